"""Frames from the sim's cameras, captured with the SDK's ImageClient and passed to the worker
as a robot's bridge passes them (`WorkerCompute`, each `ImageCaptureAndSource` as the image
service returned it): the sideways front cameras are turned upright by their camera's angle."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from bosdyn.api import network_compute_bridge_pb2, network_compute_bridge_service_pb2_grpc
from bosdyn.client.image import ImageClient
from bosdyn.client.robot import Robot

from agent.ncb.server import WorkerServer, start_worker_server
from perception.config import DetectorConfig
from tests.support.ncb import confidence, polygon_box

ncb = network_compute_bridge_pb2


@pytest.fixture
def stub() -> Iterator[network_compute_bridge_service_pb2_grpc.NetworkComputeBridgeWorkerStub]:
    server: WorkerServer = start_worker_server(DetectorConfig(), "127.0.0.1", 0, pool_size=1, max_pending=4)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield network_compute_bridge_service_pb2_grpc.NetworkComputeBridgeWorkerStub(channel)
    finally:
        server.stop(0)


def test_front_camera_frames_are_detected_upright(spot_robot: Robot, stub: object) -> None:
    """Default scenario: a person ahead-left, a stop sign ahead-right, tag 1 ahead. Sent as
    they come off the camera, the person comes back in the sideways frame's own pixels."""
    images = spot_robot.ensure_client(ImageClient.default_service_name).get_image_from_sources(
        ["frontleft_fisheye_image", "frontright_fisheye_image"])
    request = ncb.WorkerComputeRequest()
    for image in images:
        capture = request.input_data.images.add()
        capture.shot.CopyFrom(image.shot)
        capture.source.CopyFrom(image.source)
    request.input_data.parameters.model_name = "agent_perception"
    response = stub.WorkerCompute(request)  # type: ignore[attr-defined]
    assert response.status == ncb.NETWORK_COMPUTE_STATUS_SUCCESS, response.header.error.message
    assert set(response.output_images) == {"detections_frontleft_fisheye_image",
                                           "detections_frontright_fisheye_image"}
    left = response.output_images["detections_frontleft_fisheye_image"].object_in_image
    right = response.output_images["detections_frontright_fisheye_image"].object_in_image
    left_names = [o.name.split("_label_")[1] for o in left]
    right_names = [o.name.split("_label_")[1] for o in right]
    assert "person" in left_names and "tag:1" in left_names
    assert "stop sign" in right_names and "tag:1" in right_names
    assert all(confidence(o) >= 0.5 for o in left if o.name.endswith("_label_person"))
    # Boxes come back in the pixels as sent: the front cameras lie on their side, so a standing
    # person is wider than tall there.
    person = next(o for o in left if o.name.endswith("_label_person"))
    x1, y1, x2, y2 = polygon_box(person)
    assert x2 - x1 > 1.5 * (y2 - y1), (x1, y1, x2, y2)
