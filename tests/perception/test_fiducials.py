"""AprilTag 36h11 rendered at a known pose is found with that pose."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from fixtures.perception_support import render_tag, rotation_matrix

from perception.fiducials import FiducialFinder
from perception.frame import PinholeIntrinsics

K = PinholeIntrinsics(fx=552.0, fy=550.0, cx=322.0, cy=238.0)


def _angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    cos = (np.trace(Ra.T @ Rb) - 1.0) / 2.0
    return math.degrees(math.acos(float(np.clip(cos, -1.0, 1.0))))


# The tag's face points towards the camera: tag z = -camera z when seen head-on, tag y = up.
FACING_CAMERA = np.diag([1.0, -1.0, -1.0])

POSES = {
    "head-on": (np.eye(3), (0.0, 0.0, 1.0)),
    "yawed-and-offset": (rotation_matrix(yaw_deg=30.0), (0.15, -0.05, 1.4)),
    "pitched-and-rolled": (rotation_matrix(yaw_deg=-20.0, pitch_deg=25.0, roll_deg=15.0), (-0.2, 0.1, 1.6)),
}


@pytest.mark.parametrize("name", sorted(POSES))
def test_tag_pose_recovered_within_centimetres_and_degrees(name: str) -> None:
    turn, t = POSES[name]
    R = turn @ FACING_CAMERA
    t = np.array(t)
    size = 0.146
    image = render_tag(17, R, t, size, K.camera_matrix())
    finder = FiducialFinder(tag_size_m=size)
    found = finder.find(image, K)
    assert [f.tag_id for f in found] == [17]
    tag = found[0]
    assert tag.has_pose and tag.size_m == size and tag.label == "tag:17"
    assert np.linalg.norm(tag.camera_t_tag - t) < 0.03, (tag.camera_t_tag, t)
    assert _angle_deg(tag.camera_R_tag, R) < 3.0
    # The face normal (tag z) points back at the camera.
    assert float(tag.camera_R_tag[:, 2] @ t) < 0


def test_per_id_size_scales_the_distance() -> None:
    R, t = FACING_CAMERA, np.array([0.0, 0.0, 1.0])
    image = render_tag(3, R, t, 0.146, K.camera_matrix())
    # Told the tag is twice as big, the same image means twice as far.
    found = FiducialFinder(0.146, sizes_by_id={3: 0.292}).find(image, K)
    assert found[0].size_m == 0.292
    assert found[0].distance == pytest.approx(2.0, abs=0.05)


def test_without_intrinsics_tags_are_found_without_pose() -> None:
    image = render_tag(5, FACING_CAMERA, np.array([0.0, 0.0, 1.0]), 0.146, K.camera_matrix())
    found = FiducialFinder().find(image, None)
    assert [f.tag_id for f in found] == [5]
    assert not found[0].has_pose
    x1, y1, x2, y2 = found[0].box
    assert x1 < K.cx < x2 and y1 < K.cy < y2


def test_reduced_image_gives_corners_in_original_pixels() -> None:
    image = render_tag(9, FACING_CAMERA, np.array([0.0, 0.0, 0.8]), 0.146, K.camera_matrix())
    full = FiducialFinder().find(image, K)[0]
    half = FiducialFinder().find(cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA), K, image_scale=0.5)[0]
    assert np.allclose(half.corners, full.corners, atol=1.5)
    assert np.linalg.norm(half.camera_t_tag - full.camera_t_tag) < 0.03


def test_no_tag_no_detection() -> None:
    assert FiducialFinder().find(np.full((480, 640), 128, np.uint8), K) == []


@pytest.mark.parametrize("camera", ["frontleft_fisheye_image", "frontright_fisheye_image"])
@pytest.mark.parametrize("yaw_deg", [160.0, 180.0, 200.0])
def test_sim_tag_at_3m_in_sideways_front_camera_is_posed_within_degrees(camera: str, yaw_deg: float) -> None:
    # A 0.2 m tag ~3 m ahead is ~18 px wide in the sim's front cameras: small enough that corner
    # refinement decides whether the PnP rotation (the tag's facing, which places go-to goals)
    # is right to a few degrees or off by tens.
    from bosdyn.client.math_helpers import Quat, SE3Pose

    from sim.cameras import CAMERAS
    from sim.render import render_grey, visible_tags
    from sim.scene import parse_scenario

    scenario = parse_scenario(
        {"objects": [{"type": "apriltag", "tag_id": 1, "size_m": 0.2,
                      "pose": {"x": 3.4, "y": 0.0, "z": 0.35, "yaw_deg": yaw_deg}}]},
        "tag-3m",
    )
    spec = CAMERAS[camera]
    body = SE3Pose(0.0, 0.0, 0.5, Quat())
    truth = visible_tags(spec, body, scenario, 0.0)
    assert len(truth) == 1
    found = FiducialFinder(0.2).find(render_grey(spec, body, scenario, 0.0), spec.intrinsics)
    assert [f.tag_id for f in found] == [1]
    camera_tform_tag = truth[0].camera_tform_tag
    assert _angle_deg(found[0].camera_R_tag, camera_tform_tag.rotation.to_matrix()) < 4.0
    t = np.array([camera_tform_tag.x, camera_tform_tag.y, camera_tform_tag.z])
    assert np.linalg.norm(found[0].camera_t_tag - t) < 0.03
