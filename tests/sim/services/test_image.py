"""The simulated cameras and fiducials through the real bosdyn-client: formats, intrinsics,
robot-clock timestamps, frame caching, stalling, and a rendered tag found by OpenCV where the
world object service says it is."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from bosdyn.api import image_pb2, world_object_pb2
from bosdyn.client.exceptions import InvalidRequestError, TimedOutError
from bosdyn.client.frame_helpers import BODY_FRAME_NAME, ODOM_FRAME_NAME, VISION_FRAME_NAME, get_a_tform_b
from bosdyn.client.image import ImageClient, UnknownImageSourceError, build_image_request
from bosdyn.client.math_helpers import Quat, SE3Pose
from bosdyn.client.robot import Robot
from bosdyn.client.robot_state import RobotStateClient
from bosdyn.client.world_object import WorldObjectClient
from bosdyn.util import timestamp_to_sec

from sim.cameras import CAMERAS
from sim.robot_clock import RobotClock
from sim.scene import Scenario, parse_scenario
from sim.server import SimServer
from sim.services.image import CameraFeed
from sim.testing import close_sdk, connect_sdk
from sim.world import VISION_TFORM_ODOM

Image = image_pb2.Image
BODY_CAMERAS = sorted(CAMERAS)


@pytest.fixture
def images(spot_robot: Robot) -> ImageClient:
    return spot_robot.ensure_client(ImageClient.default_service_name)


def test_sources_have_pinhole_intrinsics_and_depth_scale(images: ImageClient) -> None:
    sources = {source.name: source for source in images.list_image_sources()}
    for name in BODY_CAMERAS:
        camera = CAMERAS[name]
        visual = sources[name]
        assert (visual.rows, visual.cols) == (480, 640)
        assert visual.image_type == image_pb2.ImageSource.IMAGE_TYPE_VISUAL
        assert visual.pinhole.intrinsics.focal_length.x == pytest.approx(camera.fx)
        assert visual.pinhole.intrinsics.principal_point.y == pytest.approx(camera.cy)
        depth = sources[camera.depth_source_name]
        assert depth.image_type == image_pb2.ImageSource.IMAGE_TYPE_DEPTH
        assert depth.depth_scale == 1000.0
        stereo = sources[camera.frame_name.removesuffix("_fisheye") + "_depth"]
        assert (stereo.rows, stereo.cols, stereo.depth_scale) == (240, 424, 1000.0)


def test_five_cameras_serve_grey_jpeg_by_default(images: ImageClient, spot_robot: Robot) -> None:
    def robot_now() -> float:
        return timestamp_to_sec(spot_robot.time_sync.robot_timestamp_from_local_secs(time.time()))

    before = robot_now()
    futures = [images.get_image_from_sources_async([name]) for name in BODY_CAMERAS]
    responses = [f.result(timeout=10)[0] for f in futures]
    after = robot_now()
    for name, response in zip(BODY_CAMERAS, responses):
        assert response.source.name == name
        assert response.shot.image.format == Image.FORMAT_JPEG
        assert response.shot.image.pixel_format == Image.PIXEL_FORMAT_GREYSCALE_U8
        decoded = cv2.imdecode(np.frombuffer(response.shot.image.data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert decoded.shape == (480, 640)
        assert decoded.std() > 5.0  # a rendered scene, not a blank frame
        assert response.shot.frame_name_image_sensor == CAMERAS[name].frame_name
        # Acquisition time is on the robot clock (the client's clock converted through time sync).
        assert before - 0.01 <= timestamp_to_sec(response.shot.acquisition_time) <= after + 0.01
        get_a_tform_b(response.shot.transforms_snapshot, BODY_FRAME_NAME, response.shot.frame_name_image_sensor)


def test_raw_grey_when_a_pixel_format_is_requested(images: ImageClient) -> None:
    request = build_image_request("left_fisheye_image", pixel_format=Image.PIXEL_FORMAT_GREYSCALE_U8)
    (response,) = images.get_image([request])
    image = response.shot.image
    assert image.format == Image.FORMAT_RAW
    assert len(image.data) == image.rows * image.cols == 480 * 640
    jpeg = images.get_image_from_sources(["left_fisheye_image"])[0].shot.image
    decoded = cv2.imdecode(np.frombuffer(jpeg.data, np.uint8), cv2.IMREAD_UNCHANGED)
    raw = np.frombuffer(image.data, np.uint8).reshape(480, 640)
    assert np.abs(decoded.astype(int) - raw.astype(int)).mean() < 4.0  # same frame, JPEG-compressed


@pytest.mark.parametrize("source", ["frontleft_depth_in_visual_frame", "frontleft_depth"])
def test_depth_is_u16_millimetres(images: ImageClient, source: str) -> None:
    (response,) = images.get_image([build_image_request(source)])
    image = response.shot.image
    assert (image.format, image.pixel_format) == (Image.FORMAT_RAW, Image.PIXEL_FORMAT_DEPTH_U16)
    depth_m = np.frombuffer(image.data, np.uint16).reshape(image.rows, image.cols) / response.source.depth_scale
    valid = depth_m[depth_m > 0]
    assert valid.size > 0.2 * depth_m.size  # the floor in front of the robot returns depth
    assert 0.1 < np.median(valid) < 10.0
    # Pixels + depth + intrinsics + the shot's snapshot give 3D points: the floor lands at z = 0.
    intr = response.source.pinhole.intrinsics
    rows, cols = np.nonzero(depth_m)
    z = depth_m[rows, cols]
    points = np.stack(
        [(cols - intr.principal_point.x) / intr.focal_length.x * z, (rows - intr.principal_point.y) / intr.focal_length.y * z, z]
    )
    odom_tform_sensor = get_a_tform_b(response.shot.transforms_snapshot, ODOM_FRAME_NAME, response.shot.frame_name_image_sensor)
    mat = odom_tform_sensor.to_matrix()
    heights = (mat[:3, :3] @ points + mat[:3, 3:4])[2]
    assert np.mean(np.abs(heights) < 0.02) > 0.5  # mostly floor
    assert heights.min() > -0.02  # nothing below the floor


def test_unknown_camera_gets_status_unknown_camera(images: ImageClient) -> None:
    with pytest.raises(UnknownImageSourceError):
        images.get_image_from_sources(["no_such_camera"])
    responses = images.get_image([build_image_request("no_such_camera")], disable_error_handler=True)
    assert responses[0].status == image_pb2.ImageResponse.STATUS_UNKNOWN_CAMERA


def test_empty_image_request_is_an_invalid_request(images: ImageClient) -> None:
    with pytest.raises(InvalidRequestError):
        images.get_image([])


def test_unsupported_formats_get_their_statuses(images: ImageClient) -> None:
    requests = [
        build_image_request("back_fisheye_image", image_format=Image.FORMAT_RLE),
        build_image_request("back_fisheye_image", pixel_format=Image.PIXEL_FORMAT_DEPTH_U16),
        build_image_request("back_depth_in_visual_frame", image_format=Image.FORMAT_JPEG),
        build_image_request("back_fisheye_image", resize_ratio=2.0),
    ]
    statuses = [r.status for r in images.get_image(requests, disable_error_handler=True)]
    Status = image_pb2.ImageResponse
    assert statuses == [
        Status.STATUS_UNSUPPORTED_IMAGE_FORMAT_REQUESTED,
        Status.STATUS_UNSUPPORTED_PIXEL_FORMAT_REQUESTED,
        Status.STATUS_UNSUPPORTED_IMAGE_FORMAT_REQUESTED,
        Status.STATUS_UNSUPPORTED_RESIZE_RATIO_REQUESTED,
    ]


def test_frames_are_rendered_at_most_once_per_frame_period(images: ImageClient) -> None:
    period_s = 1.0 / 15.0
    source = "back_fisheye_image"
    shots: list[image_pb2.ImageResponse] = []
    # Bursts of concurrent requests until two share a frame: requests that arrive while a frame
    # is rendering get that frame, however slow the host (no reliance on request latency).
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        futures = [images.get_image_from_sources_async([source]) for _ in range(4)]
        shots += [f.result(timeout=10)[0] for f in futures]
        stamps = [timestamp_to_sec(r.shot.acquisition_time) for r in shots]
        if len(set(stamps)) < len(stamps):
            break
    by_stamp: dict[float, bytes] = {}
    for shot, stamp in zip(shots, stamps):
        assert by_stamp.setdefault(stamp, shot.shot.image.data) == shot.shot.image.data  # cached, not re-rendered
    assert len(by_stamp) < len(shots), "no two requests ever shared a frame"
    period_ns = int(1e9 / 15.0)  # the sim's fixed frame grid on the robot clock
    slots = {RobotClock.from_timestamp(r.shot.acquisition_time) // period_ns for r in shots}
    assert len(slots) == len(by_stamp)  # never two renders in one frame period
    time.sleep(1.5 * period_s)
    later = images.get_image_from_sources([source])[0]
    assert timestamp_to_sec(later.shot.acquisition_time) > max(stamps)


def test_requests_waiting_on_a_slow_render_share_it() -> None:
    """A render that outlasts the frame period (a loaded host) is handed to every request that
    waited for it, instead of each waiter rendering again in turn."""
    period_ns = 10_000_000
    now_ns = [0]
    renders: list[int] = []

    class World:  # the two things a feed reads from the sim world
        class clock:
            @staticmethod
            def now_ns() -> int:
                return now_ns[0]

        @staticmethod
        def snapshot() -> SimpleNamespace:
            return SimpleNamespace(robot_ns=now_ns[0])

    def slow_render(camera: object, body: SimpleNamespace) -> np.ndarray:
        renders.append(body.robot_ns)
        time.sleep(0.1)  # the other requests are queued behind this render by now
        now_ns[0] += 3 * period_ns  # ... and it took three frame periods
        return np.zeros((2, 2), np.uint8)

    feed = CameraFeed(image_pb2.ImageSource(name="x"), CAMERAS["frontleft_fisheye_image"], False, slow_render, period_ns)
    start = threading.Barrier(4)

    def request(_: int) -> object:
        start.wait()
        return feed.frame(World)  # type: ignore[arg-type]

    with ThreadPoolExecutor(4) as pool:
        frames = list(pool.map(request, range(4)))
    assert renders == [0] and all(f is frames[0] for f in frames)
    assert feed.frame(World) is not frames[0]  # type: ignore[arg-type]  # a later request: a new frame
    assert renders == [0, 3 * period_ns]


def test_stalled_images_time_out_while_robot_state_still_answers(sim: SimServer, spot_robot: Robot, images: ImageClient) -> None:
    state_client = spot_robot.ensure_client(RobotStateClient.default_service_name)
    sim.stall_images(True)
    try:
        started = time.monotonic()
        with pytest.raises(TimedOutError):
            images.get_image_from_sources(["frontleft_fisheye_image"], timeout=0.3)
        assert time.monotonic() - started < 2.0
        assert state_client.get_robot_state(timeout=1.0).HasField("kinematic_state")
    finally:
        sim.stall_images(False)
    assert images.get_image_from_sources(["frontleft_fisheye_image"], timeout=5.0)[0].status == 1


# ---------------------------------------------------------------- fiducials


def one_tag_scenario() -> Scenario:
    """Tag 1 (0.2 m black square) 3 m ahead of the start, facing the robot, centre 0.4 m high."""
    return parse_scenario(
        {"objects": [{"type": "apriltag", "tag_id": 1, "size_m": 0.2, "pose": {"x": 3.0, "y": 0.0, "z": 0.4, "yaw_deg": 180.0}}]},
        "one_tag_scenario",
    )


@pytest.fixture
def tag_sim() -> Iterator[SimServer]:
    """One tag; the robot is moved to about 1.3 m from it, slightly off-axis."""
    server = SimServer.start(one_tag_scenario(), port=0)
    server.world.teleport(1.7, 0.15, 0.1)
    try:
        yield server
    finally:
        server.stop()


def _cv_tag_pose(response: image_pb2.ImageResponse, tag_id: int, size_m: float) -> SE3Pose:
    """camera_tform_tag from OpenCV aruco + solvePnP on the served image and intrinsics."""
    grey = cv2.imdecode(np.frombuffer(response.shot.image.data, np.uint8), cv2.IMREAD_GRAYSCALE)
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    detector = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11), params)
    corners, ids, _ = detector.detectMarkers(grey)
    assert ids is not None and tag_id in ids.flatten(), "OpenCV did not find the rendered tag"
    found = corners[list(ids.flatten()).index(tag_id)].reshape(4, 2)
    intr = response.source.pinhole.intrinsics
    k = np.array([[intr.focal_length.x, 0, intr.principal_point.x], [0, intr.focal_length.y, intr.principal_point.y], [0, 0, 1]])
    h = size_m / 2.0
    object_points = np.array([[-h, h, 0], [h, h, 0], [h, -h, 0], [-h, -h, 0]], dtype=np.float64)
    ok, rvec, tvec = cv2.solvePnP(object_points, found.astype(np.float64), k, None, flags=cv2.SOLVEPNP_IPPE_SQUARE)
    assert ok
    rot, _ = cv2.Rodrigues(rvec)
    t = tvec.flatten()
    return SE3Pose(t[0], t[1], t[2], Quat.from_matrix(rot))


def test_rendered_tag_is_found_by_opencv_where_world_objects_put_it(tag_sim: SimServer) -> None:
    robot = connect_sdk(tag_sim, "tag-test")
    try:
        objects = robot.ensure_client(WorldObjectClient.default_service_name).list_world_objects(
            object_type=[world_object_pb2.WORLD_OBJECT_APRILTAG]
        ).world_objects
        assert [obj.apriltag_properties.tag_id for obj in objects] == [1]
        tag = objects[0]
        props = tag.apriltag_properties
        assert props.dimensions.x == pytest.approx(0.2)
        vision_tform_fiducial = get_a_tform_b(tag.transforms_snapshot, VISION_FRAME_NAME, props.frame_name_fiducial)
        # The world object agrees with the scenario (odom -> vision through the fixed offset).
        truth_odom = one_tag_scenario().tags[0].odom_tform_tag()
        truth_vision = VISION_TFORM_ODOM.get_closest_se3_transform() * truth_odom
        assert [vision_tform_fiducial.x, vision_tform_fiducial.y, vision_tform_fiducial.z] == pytest.approx(
            [truth_vision.x, truth_vision.y, truth_vision.z], abs=1e-6
        )

        camera = next(c for c in CAMERAS.values() if c.frame_name == props.frame_name_camera)
        image_client = robot.ensure_client(ImageClient.default_service_name)
        (response,) = image_client.get_image_from_sources([camera.name])
        camera_tform_tag = _cv_tag_pose(response, 1, props.dimensions.x)
        vision_tform_camera = get_a_tform_b(
            response.shot.transforms_snapshot, VISION_FRAME_NAME, response.shot.frame_name_image_sensor
        )
        seen = vision_tform_camera * camera_tform_tag
        error_m = np.linalg.norm([seen.x - truth_vision.x, seen.y - truth_vision.y, seen.z - truth_vision.z])
        assert error_m < 0.03, f"OpenCV puts the tag {error_m:.3f} m from where it is"
        # Same orientation convention: the tag's z (out of the face) agrees within a few degrees.
        z_seen = seen.rot.to_matrix()[:, 2]
        z_true = truth_vision.rot.to_matrix()[:, 2]
        assert float(z_seen @ z_true) > np.cos(np.radians(5.0))
    finally:
        close_sdk(robot)


def test_no_tags_reported_from_behind_the_board() -> None:
    with SimServer.start(one_tag_scenario(), port=0) as server:
        server.world.teleport(5.0, 0.0, np.pi)  # 2 m behind the tag, looking at the back of its board
        robot = connect_sdk(server, "no-tags")
        try:
            assert list(robot.ensure_client(WorldObjectClient.default_service_name).list_world_objects().world_objects) == []
        finally:
            close_sdk(robot)
