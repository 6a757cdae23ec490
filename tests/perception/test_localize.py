"""Detections and tags placed in odom from a frame's transforms snapshot and intrinsics.

The geometry is chosen so the answers are known by hand: the body stands at odom (2, 1, 0.5)
facing +y (yaw 90 degrees); the camera sits 0.4 m ahead of the body centre, 0.5 m over the
floor, looking forward and 45 degrees down.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from fixtures.perception_support import snapshot

from perception.detection import Detection, FiducialDetection
from perception.frame import Frame, PinholeIntrinsics
from perception.localize import sightings_for

K = PinholeIntrinsics(fx=400.0, fy=400.0, cx=320.0, cy=240.0)


def _frame(gpe_z: float | None = 0.0, depth: np.ndarray | None = None, **kw) -> Frame:
    return Frame(
        camera="frontleft_fisheye_image",
        image=np.zeros((480, 640), np.uint8),
        acquisition_time_robot=10.0,
        acquisition_time_local=20.0,
        intrinsics=K,
        frame_name_image_sensor="frontleft_fisheye",
        transforms_snapshot=snapshot(gpe_z=gpe_z, **kw),
        depth_m=depth,
    )


def _box_standing_at(u: float, v: float) -> tuple[float, float, float, float]:
    """A box whose bottom-centre is pixel (u, v)."""
    return (u - 30.0, v - 100.0, u + 30.0, v)


def test_object_on_the_floor_along_the_optical_axis() -> None:
    person = Detection("person", 0, 0.9, _box_standing_at(K.cx, K.cy))
    [s] = sightings_for(_frame(), [person])
    # Camera at odom (2, 1.4, 0.5), axis 45 degrees down: meets the floor 0.5 m further along +y.
    assert s.position_odom == pytest.approx((2.0, 1.9, 0.0), abs=1e-6)
    assert s.distance_m == pytest.approx(0.9, abs=1e-6)  # from the body centre, straight ahead
    assert s.bearing_rad == pytest.approx(0.0, abs=1e-6)
    assert s.label == "person" and s.camera == "frontleft_fisheye_image" and s.time_local == 20.0
    assert s.image_size == (640, 480) and s.yaw_odom is None


def test_ground_plane_comes_from_the_gpe_frame() -> None:
    # Floor at z = 0.1: the camera is 0.4 m above it; a ray 60 degrees down (15 below the axis).
    v = K.cy + K.fy * math.tan(math.radians(15.0))
    [s] = sightings_for(_frame(gpe_z=0.1), [Detection("person", 0, 0.9, _box_standing_at(K.cx, v))])
    ahead = 0.4 / math.tan(math.radians(60.0))
    assert s.position_odom == pytest.approx((2.0, 1.4 + ahead, 0.1), abs=1e-6)


def test_without_gpe_the_floor_is_odom_z0() -> None:
    [s] = sightings_for(_frame(gpe_z=None), [Detection("person", 0, 0.9, _box_standing_at(K.cx, K.cy))])
    assert s.position_odom == pytest.approx((2.0, 1.9, 0.0), abs=1e-6)


def test_object_to_the_right_has_negative_bearing() -> None:
    [s] = sightings_for(_frame(), [Detection("person", 0, 0.9, _box_standing_at(K.cx + 200, K.cy))])
    assert s.bearing_rad < 0 and s.position_odom[0] > 2.0  # robot faces +y: its right is +x


def test_ray_above_the_horizon_has_no_position() -> None:
    [s] = sightings_for(_frame(), [Detection("kite", 33, 0.9, _box_standing_at(K.cx, 0.0 - 300))])
    assert s.position_odom is None and s.distance_m is None and s.bearing_rad is None


def test_registered_depth_wins_over_the_ground_plane() -> None:
    depth = np.full((240, 320), 2.0, np.float32)  # half resolution: pixels are scaled to it
    depth[:10] = np.nan
    box = (K.cx - 40, K.cy - 40, K.cx + 40, K.cy + 40)  # centred on the optical axis
    [s] = sightings_for(_frame(depth=depth), [Detection("chair", 56, 0.8, box)])
    d = 2.0 / math.sqrt(2.0)
    assert s.position_odom == pytest.approx((2.0, 1.4 + d, 0.5 - d), abs=1e-6)


def test_tag_position_and_facing_direction() -> None:
    # A tag 1 m along the optical axis, its face turned back at the camera.
    R = np.diag([1.0, -1.0, -1.0])
    tag = FiducialDetection(
        tag_id=4,
        corners=np.array([[300.0, 220.0], [340.0, 220.0], [340.0, 260.0], [300.0, 260.0]]),
        camera_R_tag=R,
        camera_t_tag=np.array([0.0, 0.0, 1.0]),
        size_m=0.146,
    )
    [s] = sightings_for(_frame(), [], [tag])
    d = 1.0 / math.sqrt(2.0)
    assert s.label == "tag:4" and s.score == 1.0
    assert s.position_odom == pytest.approx((2.0, 1.4 + d, 0.5 - d), abs=1e-6)
    # The face points back along the camera axis, i.e. towards -y in odom (and up).
    assert s.yaw_odom == pytest.approx(-math.pi / 2, abs=1e-6)
    assert s.box == (300.0, 220.0, 340.0, 260.0)


def test_no_snapshot_or_intrinsics_keeps_the_sighting_without_geometry() -> None:
    frame = _frame()
    frame.transforms_snapshot = None
    [s] = sightings_for(frame, [Detection("person", 0, 0.9, (1, 2, 3, 4))])
    assert s.position_odom is None and s.box == (1.0, 2.0, 3.0, 4.0)
    frame = _frame()
    frame.intrinsics = None
    [s] = sightings_for(frame, [Detection("person", 0, 0.9, (1, 2, 3, 4))])
    assert s.position_odom is None


def test_snapshot_missing_the_camera_frame_gives_no_geometry() -> None:
    frame = _frame()
    frame.frame_name_image_sensor = "hand_color_image_sensor"
    [s] = sightings_for(frame, [Detection("person", 0, 0.9, _box_standing_at(K.cx, K.cy))])
    assert s.position_odom is None
