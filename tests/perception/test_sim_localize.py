"""Objects are placed on the floor correctly from Spot's sideways front cameras, without depth.

End to end: the sim renders a person, the real SDK fetches the image over TLS, perception
decodes, detects and localizes it. The ground-plane estimate must use the image's "down"
direction (sideways on the front cameras), not the box's bottom edge.
"""

from __future__ import annotations

import math

import pytest
from bosdyn.client.image import ImageClient, build_image_request
from bosdyn.client.lease import LeaseClient, LeaseKeepAlive
from bosdyn.client.robot_command import RobotCommandClient, blocking_stand

from perception.decode import decode_image_response
from perception.perceiver import Perceiver
from sim.scene import parse_scenario
from sim.server import SimServer
from sim.testing import sdk_robot

PERSON_X, PERSON_Y = 2.6, -0.3


@pytest.fixture
def person_sim():
    scenario = parse_scenario(
        {"objects": [{"type": "person", "pose": {"x": PERSON_X, "y": PERSON_Y, "yaw_deg": 180.0}}]},
        "person-ahead",
    )
    server = SimServer.start(scenario=scenario, port=0)
    try:
        yield server
    finally:
        server.stop()


def test_person_ground_position_from_front_cameras_without_depth(person_sim: SimServer) -> None:
    perceiver = Perceiver()
    with sdk_robot(person_sim, "localize-test") as robot:
        # Standing, as when the agent runs: the cameras are ~0.5 m over the floor.
        with LeaseKeepAlive(robot.ensure_client(LeaseClient.default_service_name), must_acquire=True):
            robot.power_on(timeout_sec=10)
            blocking_stand(robot.ensure_client(RobotCommandClient.default_service_name), timeout_sec=10)
        images = robot.ensure_client(ImageClient.default_service_name)
        sources = ["frontleft_fisheye_image", "frontright_fisheye_image"]
        responses = images.get_image([build_image_request(s) for s in sources])
    people = []
    for resp in responses:
        frame = decode_image_response(resp)
        assert frame.depth_m is None  # the ground-plane path, not depth
        result = perceiver.process(frame)
        people += [s for s in result.sightings if s.label == "person" and s.position_odom is not None]
    assert people, "the person ahead was not detected and placed by either front camera"
    # The sim's odom starts at the robot's start pose (origin), so the truth is in odom too.
    for s in people:
        x, y, _ = s.position_odom
        assert math.hypot(x - PERSON_X, y - PERSON_Y) < 0.4, (s.camera, x, y)
        assert s.distance_m == pytest.approx(math.hypot(PERSON_X, PERSON_Y), abs=0.45)
