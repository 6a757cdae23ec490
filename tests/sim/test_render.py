"""Simulated cameras: mounting, pinhole geometry checked with OpenCV, depth, visible tags, detector.

The geometry tests use only OpenCV's own tools (aruco detection, solvePnP) and the camera's
served intrinsics and mounting pose: if a tag's pose estimated from a rendered frame, taken to
odom through body_tform_camera and the body pose, lands on the scenario's tag pose, the frames,
the intrinsics and the renderer agree.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from bosdyn.client.math_helpers import Quat, SE3Pose

from perception.config import DetectorConfig
from perception.fiducials import FiducialFinder, tag_object_points
from perception.frame import Frame
from perception.perceiver import Perceiver
from perception.rotation import upright_rotation
from sim.cameras import CAMERAS, CameraSpec
from sim.render import render_depth, render_grey, render_grey_and_depth, visible_tags
from sim.scene import Scenario, load_scenario, parse_scenario, scenario_dir

FRONT = ("frontleft_fisheye_image", "frontright_fisheye_image")
BODY = SE3Pose(0.3, -0.2, 0.5, Quat.from_yaw(0.1))  # standing, a little off the odom origin
STANDING_AT_START = SE3Pose(0.0, 0.0, 0.5, Quat.from_yaw(0.0))


def _tag_scenario(x: float, y: float, z: float, yaw_deg: float, size: float = 0.2, tag_id: int = 7) -> Scenario:
    pose = {"x": x, "y": y, "z": z, "yaw_deg": yaw_deg}
    return parse_scenario({"objects": [{"type": "apriltag", "tag_id": tag_id, "size_m": size, "pose": pose}]}, "test")


def _rotation_angle_deg(a: SE3Pose, b: SE3Pose) -> float:
    rel = a.inverse() * b
    return math.degrees(2.0 * math.acos(min(1.0, abs(rel.rot.w))))


def _aruco(refinement: int) -> cv2.aruco.ArucoDetector:
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = refinement
    return cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11), params)


# --- Mounting ----------------------------------------------------------------------------------


def test_five_body_cameras_with_spot_names() -> None:
    assert set(CAMERAS) == {
        "frontleft_fisheye_image",
        "frontright_fisheye_image",
        "left_fisheye_image",
        "right_fisheye_image",
        "back_fisheye_image",
    }
    for name, cam in CAMERAS.items():
        prefix = name.removesuffix("_fisheye_image")
        assert cam.name == name
        assert cam.frame_name == f"{prefix}_fisheye"
        assert cam.depth_source_name == f"{prefix}_depth_in_visual_frame"
        assert (cam.width, cam.height) == (640, 480)
        np.testing.assert_allclose(cam.intrinsics.camera_matrix(), cam.camera_matrix())
    rotations = {n: c.upright_rotation_deg for n, c in CAMERAS.items()}
    assert rotations == {
        "frontleft_fisheye_image": -78.0,
        "frontright_fisheye_image": -102.0,
        "left_fisheye_image": 0.0,
        "right_fisheye_image": 180.0,
        "back_fisheye_image": 0.0,
    }


def _axes_in_body(cam: CameraSpec) -> np.ndarray:
    return cam.body_tform_camera.to_matrix()[:3, :3]  # columns: camera x, y, z in body


def test_mounting_looks_like_a_spot() -> None:
    fl, fr = _axes_in_body(CAMERAS[FRONT[0]]), _axes_in_body(CAMERAS[FRONT[1]])
    for axes in (fl, fr):
        forward = axes[:, 2]
        pitch_down = math.degrees(math.asin(-forward[2]))
        assert forward[0] > 0.85 and 10.0 <= pitch_down <= 30.0
        # Sideways: image rows (camera y) run mostly vertically in the world.
        assert abs(axes[2, 1]) < 0.5 and abs(axes[2, 0]) > 0.8
    # Cross-eyed: the left-mounted camera looks right and vice versa.
    assert CAMERAS[FRONT[0]].body_tform_camera.y > 0 and fl[1, 2] < 0
    assert CAMERAS[FRONT[1]].body_tform_camera.y < 0 and fr[1, 2] > 0
    assert _axes_in_body(CAMERAS["left_fisheye_image"])[1, 2] > 0.9
    assert _axes_in_body(CAMERAS["right_fisheye_image"])[1, 2] < -0.9
    assert _axes_in_body(CAMERAS["back_fisheye_image"])[0, 2] < -0.9


@pytest.mark.parametrize("name", sorted(CAMERAS))
def test_upright_rotation_shows_the_world_upright(name: str) -> None:
    """A vertical pole in front of the camera is vertical (top up) after the SDK's rotation."""
    cam = CAMERAS[name]
    odom_tform_cam = (STANDING_AT_START * cam.body_tform_camera).to_matrix()
    forward = odom_tform_cam[:3, 2].copy()
    forward[2] = 0.0
    base = odom_tform_cam[:3, 3] + 2.0 * forward / np.linalg.norm(forward)
    points = np.array([[base[0], base[1], 0.0], [base[0], base[1], 1.0]])
    cam_pts = (points - odom_tform_cam[:3, 3]) @ odom_tform_cam[:3, :3]
    px = cam_pts @ cam.camera_matrix().T
    px = px[:, :2] / px[:, 2:3]
    rot = upright_rotation(cam.upright_rotation_deg, cam.width, cam.height)
    bottom, top = px @ rot.forward[:, :2].T + rot.forward[:, 2]
    dx, dy = top - bottom
    assert dy < 0  # top of the pole above its foot
    assert abs(math.degrees(math.atan2(dx, -dy))) < 1.0  # and vertical


# --- Geometry against OpenCV ---------------------------------------------------------------------

POSE_CASES = [
    ("frontleft_fisheye_image", (2.0, -0.5, 0.45, 170.0)),
    ("frontleft_fisheye_image", (1.8, -0.3, 0.4, 150.0)),
    ("frontright_fisheye_image", (1.5, 0.6, 0.35, 200.0)),
    ("back_fisheye_image", (-2.0, 0.3, 0.5, 10.0)),
    ("right_fisheye_image", (0.0, -2.0, 0.4, 95.0)),
]


@pytest.mark.parametrize(("name", "tag_pose"), POSE_CASES)
def test_tag_pose_from_rendered_frame_matches_scenario(name: str, tag_pose: tuple[float, float, float, float]) -> None:
    cam = CAMERAS[name]
    scenario = _tag_scenario(*tag_pose)
    image = render_grey(cam, BODY, scenario, 0.0)
    assert image.shape == (480, 640) and image.dtype == np.uint8
    corners, ids, _ = _aruco(cv2.aruco.CORNER_REFINE_APRILTAG).detectMarkers(image)
    assert ids is not None and ids.ravel().tolist() == [7]
    # The AprilTag refinement puts pixel centres at +0.5 (AprilRobotics/apriltag#121); OpenCV and
    # the served intrinsics put them at integers.
    pts = corners[0].reshape(4, 2).astype(np.float64) - 0.5
    k = cam.camera_matrix()
    ok, rvec, tvec = cv2.solvePnP(tag_object_points(0.2), pts, k, None, flags=cv2.SOLVEPNP_IPPE_SQUARE)
    assert ok
    cam_tform_tag = np.eye(4)
    cam_tform_tag[:3, :3] = cv2.Rodrigues(rvec)[0]
    cam_tform_tag[:3, 3] = tvec.ravel()
    estimate = BODY * cam.body_tform_camera * SE3Pose.from_matrix(cam_tform_tag)
    truth = scenario.tags[0].odom_tform_tag()
    position_error = math.dist((estimate.x, estimate.y, estimate.z), (truth.x, truth.y, truth.z))
    assert position_error < 0.03
    assert _rotation_angle_deg(truth, estimate) < 4.0

    # visible_tags reports the same tag where the image shows it.
    (view,) = visible_tags(cam, BODY, scenario, 0.0)
    assert view.tag_id == 7 and view.size_m == 0.2
    np.testing.assert_allclose(view.odom_tform_tag.to_matrix(), truth.to_matrix(), atol=1e-9)
    np.testing.assert_allclose(np.abs(view.corners_px - pts), 0.0, atol=0.3)
    expected_cam_tform_tag = (BODY * cam.body_tform_camera).inverse() * truth
    np.testing.assert_allclose(view.camera_tform_tag.to_matrix(), expected_cam_tform_tag.to_matrix(), atol=1e-9)


def test_team_fiducial_finder_sees_tag_in_sideways_front_camera() -> None:
    """perception.fiducials (default subpixel refinement) on a raw, sideways frontleft frame."""
    cam = CAMERAS["frontleft_fisheye_image"]
    scenario = _tag_scenario(1.5, -0.3, 0.4, 170.0)
    (found,) = FiducialFinder(tag_size_m=0.2).find(render_grey(cam, BODY, scenario, 0.0), cam.intrinsics)
    mat = np.eye(4)
    mat[:3, :3], mat[:3, 3] = found.camera_R_tag, found.camera_t_tag
    estimate = BODY * cam.body_tform_camera * SE3Pose.from_matrix(mat)
    truth = scenario.tags[0].odom_tform_tag()
    assert math.dist((estimate.x, estimate.y, estimate.z), (truth.x, truth.y, truth.z)) < 0.05
    assert _rotation_angle_deg(truth, estimate) < 10.0


def test_depth_is_optical_axis_distance_of_floor_and_objects() -> None:
    cam = CAMERAS["frontleft_fisheye_image"]
    scenario = _tag_scenario(1.8, -0.3, 0.3, 170.0)  # board top below the camera: above the horizon is sky
    grey, depth = render_grey_and_depth(cam, BODY, scenario, 0.0)
    assert depth.dtype == np.float32 and depth.shape == (480, 640)
    np.testing.assert_array_equal(grey, render_grey(cam, BODY, scenario, 0.0))
    np.testing.assert_array_equal(depth, render_depth(cam, BODY, scenario, 0.0))
    odom_tform_cam = (BODY * cam.body_tform_camera).to_matrix()
    k_inv = np.linalg.inv(cam.camera_matrix())
    vs, us = np.nonzero(depth > 0)
    assert len(us) > 0.3 * depth.size
    # Every pixel with a return unprojects onto the floor (z = 0) or onto the tag's plane.
    rays = np.column_stack([us, vs, np.ones_like(us)]) @ k_inv.T
    points = (rays * depth[vs, us][:, None]) @ odom_tform_cam[:3, :3].T + odom_tform_cam[:3, 3]
    tag = scenario.tags[0].odom_tform_tag().to_matrix()
    on_floor = np.abs(points[:, 2]) < 2e-3
    off_tag_plane = (points - tag[:3, 3]) @ tag[:3, 2]
    on_board = np.abs(off_tag_plane) < 2e-3
    on_post = np.abs(off_tag_plane + 0.01) < 2e-3  # the post stands 1 cm behind the board
    assert np.all(on_floor | on_board | on_post)
    assert on_board.sum() > 500 and on_post.sum() > 50
    # The tag's centre pixel has the tag centre's camera z.
    (view,) = visible_tags(cam, BODY, scenario, 0.0)
    u, v = view.corners_px.mean(axis=0)
    assert depth[int(round(v)), int(round(u))] == pytest.approx(view.camera_tform_tag.z, abs=0.01)
    # Nothing beyond the depth sensor's range; the sky has no return.
    assert depth.max() <= 10.0
    all_v, all_u = np.mgrid[0:480, 0:640]
    all_rays = np.stack([all_u, all_v, np.ones_like(all_u)], axis=-1) @ k_inv.T
    looking_up = (all_rays @ odom_tform_cam[:3, :3].T)[..., 2] >= 0.0
    assert looking_up.sum() > 1000 and np.all(depth[looking_up] == 0.0)


def test_objects_behind_the_camera_leave_no_trace() -> None:
    """No wrap-around: objects behind the camera, or partly behind it, paint only where they are."""
    cam = CAMERAS["frontleft_fisheye_image"]
    empty = parse_scenario({}, "test")
    behind = parse_scenario(
        {
            "objects": [
                {"type": "person", "pose": {"x": -1.5, "y": 0.0}},
                {"type": "stop_sign", "pose": {"x": -2.0, "y": 0.5, "z": 0.9, "yaw_deg": 0.0}},
                {"type": "apriltag", "tag_id": 3, "size_m": 0.3, "pose": {"x": -1.0, "y": -0.5, "z": 0.4}},
            ]
        },
        "test",
    )
    np.testing.assert_array_equal(
        render_grey(cam, STANDING_AT_START, behind, 0.0), render_grey(cam, STANDING_AT_START, empty, 0.0)
    )
    assert visible_tags(cam, STANDING_AT_START, behind, 0.0) == []

    # A person right beside the camera, straddling its near plane.
    straddling = parse_scenario({"objects": [{"type": "person", "pose": {"x": 0.45, "y": -0.3}}]}, "test")
    depth_empty = render_depth(cam, STANDING_AT_START, empty, 0.0)
    depth = render_depth(cam, STANDING_AT_START, straddling, 0.0)
    vs, us = np.nonzero(depth != depth_empty)
    assert len(us) > 1000  # the person fills part of the view
    odom_tform_cam = (STANDING_AT_START * cam.body_tform_camera).to_matrix()
    rays = np.column_stack([us, vs, np.ones_like(us)]) @ np.linalg.inv(cam.camera_matrix()).T
    points = (rays * depth[vs, us][:, None]) @ odom_tform_cam[:3, :3].T + odom_tform_cam[:3, 3]
    person_xy = np.array([0.45, -0.3])
    cam_xy = odom_tform_cam[:2, 3]
    face = (cam_xy - person_xy) / np.linalg.norm(cam_xy - person_xy)
    # Every changed pixel lies on the person's billboard: right plane, within its extent.
    assert np.all(np.abs((points[:, :2] - person_xy) @ face) < 2e-3)
    assert np.all(np.abs((points[:, :2] - person_xy) @ np.array([-face[1], face[0]])) < 0.4)
    assert np.all((points[:, 2] > -1e-3) & (points[:, 2] < 1.751))


def _marker_ids(image: np.ndarray) -> list[int]:
    """Marker ids OpenCV finds (OpenCV 4.x says None for none, 5.1 an empty array)."""
    ids = _aruco(cv2.aruco.CORNER_REFINE_NONE).detectMarkers(image)[1]
    return [] if ids is None else [int(i) for i in np.asarray(ids).ravel()]


def test_visible_tags_respects_facing_range_and_occlusion() -> None:
    cam = CAMERAS["frontright_fisheye_image"]
    facing = _tag_scenario(2.0, 0.2, 0.4, 180.0)
    assert [v.tag_id for v in visible_tags(cam, STANDING_AT_START, facing, 0.0)] == [7]
    away = _tag_scenario(2.0, 0.2, 0.4, 0.0)
    assert visible_tags(cam, STANDING_AT_START, away, 0.0) == []
    image = render_grey(cam, STANDING_AT_START, away, 0.0)
    assert _marker_ids(image) == []  # the back is blank
    far = _tag_scenario(9.0, 0.5, 0.4, 180.0)
    assert visible_tags(cam, STANDING_AT_START, far, 0.0) == []
    hidden = parse_scenario(
        {
            "objects": [
                {"type": "apriltag", "tag_id": 7, "size_m": 0.2, "pose": {"x": 3.0, "y": 0.4, "z": 0.6, "yaw_deg": 180}},
                {"type": "person", "pose": {"x": 2.0, "y": 0.27}},
            ]
        },
        "test",
    )
    assert visible_tags(cam, STANDING_AT_START, hidden, 0.0) == []
    hidden_image = render_grey(cam, STANDING_AT_START, hidden, 0.0)
    assert _marker_ids(hidden_image) == []


# --- The agent's detection on rendered frames ----------------------------------------------------


@pytest.fixture(scope="module")
def detector() -> Perceiver:
    """What the agent runs: the COCO detector, and the person model as its second stage (at 2-2.5 m
    the person's head is cut off by the frame's top; NanoDet-g alone scores her 0.2-0.4 there)."""
    return Perceiver(DetectorConfig(score_threshold=0.2, fiducials=False, num_threads=2))


def _best_score(detector: Perceiver, scenario: Scenario, t: float, label: str) -> float:
    """Highest `label` score over the two front cameras, each turned upright by its camera's rotation."""
    best = 0.0
    for name in FRONT:
        raw = render_grey(CAMERAS[name], STANDING_AT_START, scenario, t)
        best = max([best] + [d.score for d in detector.detect_objects(Frame(name, raw, 0.0, 0.0)) if d.label == label])
    return best


@pytest.mark.parametrize("distance", [2.0, 2.5, 3.0])
def test_detector_finds_person_ahead(detector: Perceiver, distance: float) -> None:
    scenario = parse_scenario({"objects": [{"type": "person", "pose": {"x": distance, "y": 0.0}}]}, "test")
    assert _best_score(detector, scenario, 0.0, "person") > 0.4


@pytest.mark.parametrize("distance", [2.5, 3.0])
def test_detector_finds_stop_sign_ahead(detector: Perceiver, distance: float) -> None:
    scenario = parse_scenario(
        {"objects": [{"type": "stop_sign", "pose": {"x": distance, "y": 0.0, "z": 0.9, "yaw_deg": 180.0}}]}, "test"
    )
    assert _best_score(detector, scenario, 0.0, "stop sign") > 0.4


def test_shipped_scenarios_show_what_they_promise(detector: Perceiver) -> None:
    walking = load_scenario(scenario_dir() / "person_walking.yaml")
    assert _best_score(detector, walking, 30.0, "person") > 0.4  # stopped 3 m ahead
    assert _best_score(detector, load_scenario(scenario_dir() / "stop_sign.yaml"), 0.0, "stop sign") > 0.4
    empty = load_scenario(scenario_dir() / "empty.yaml")
    assert _best_score(detector, empty, 0.0, "person") < 0.2
    assert _best_score(detector, empty, 0.0, "stop sign") < 0.2
    ahead = load_scenario(scenario_dir() / "fiducial_ahead.yaml")
    seen = {v.tag_id for name in FRONT for v in visible_tags(CAMERAS[name], STANDING_AT_START, ahead, 0.0)}
    assert seen == {1}
