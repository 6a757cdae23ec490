"""Detections and fiducials -> `Sighting`s placed in the `odom` frame.

Uses the frame's transforms snapshot (`bosdyn.client.frame_helpers.get_a_tform_b`) and its
pinhole intrinsics:

- tags: the PnP pose, moved to odom; `yaw_odom` is the direction the tag's face points (its
  outward normal) projected on the floor.
- objects: with a registered depth image, the median depth inside the box along the ray through
  the box centre; otherwise the ray through the box's foot point (where an upright object stands: the
  box edge in the image's "down" direction, which is sideways on Spot's front cameras)
  meets the ground plane: the `gpe` frame's xy-plane when the snapshot has it, else odom z = 0.

`distance_m` / `bearing_rad` are measured in the body frame's xy-plane (bearing 0 = straight
ahead, positive to the left). Anything the geometry cannot give stays None.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from bosdyn.client.frame_helpers import (
    BODY_FRAME_NAME,
    GROUND_PLANE_FRAME_NAME,
    ODOM_FRAME_NAME,
    ValidateFrameTreeError,
    get_a_tform_b,
)

from perception.detection import Detection, FiducialDetection, Sighting
from perception.frame import Frame, PinholeIntrinsics

MAX_GROUND_RANGE_M = 30.0  # a ray meeting the floor farther than this is nearly horizontal: unreliable


@dataclass(frozen=True)
class FrameGeometry:
    """The transforms one frame needs, as 4 x 4 matrices."""

    odom_T_camera: np.ndarray
    body_T_odom: np.ndarray
    ground_point_odom: np.ndarray  # a point on the floor
    ground_normal_odom: np.ndarray  # unit, pointing up

    @classmethod
    def from_frame(cls, frame: Frame) -> FrameGeometry | None:
        snapshot = frame.transforms_snapshot
        if snapshot is None or not frame.frame_name_image_sensor:
            return None
        try:
            odom_T_cam = get_a_tform_b(snapshot, ODOM_FRAME_NAME, frame.frame_name_image_sensor)
            odom_T_body = get_a_tform_b(snapshot, ODOM_FRAME_NAME, BODY_FRAME_NAME, validate=False)
            odom_T_gpe = get_a_tform_b(snapshot, ODOM_FRAME_NAME, GROUND_PLANE_FRAME_NAME, validate=False)
        except ValidateFrameTreeError:
            return None
        if odom_T_cam is None or odom_T_body is None:
            return None
        if odom_T_gpe is not None:
            g = odom_T_gpe.to_matrix()
            point, normal = g[:3, 3], g[:3, 2]
            if normal[2] < 0:
                normal = -normal
        else:
            point, normal = np.zeros(3), np.array([0.0, 0.0, 1.0])
        return cls(
            odom_T_camera=odom_T_cam.to_matrix(),
            body_T_odom=odom_T_body.inverse().to_matrix(),
            ground_point_odom=np.asarray(point, dtype=np.float64),
            ground_normal_odom=np.asarray(normal, dtype=np.float64) / np.linalg.norm(normal),
        )

    def camera_to_odom(self, p_camera: np.ndarray) -> np.ndarray:
        return self.odom_T_camera[:3, :3] @ p_camera + self.odom_T_camera[:3, 3]

    def direction_to_odom(self, d_camera: np.ndarray) -> np.ndarray:
        return self.odom_T_camera[:3, :3] @ d_camera

    def ground_hit(self, ray_camera: np.ndarray, height_m: float = 0.0) -> np.ndarray | None:
        """Where a ray from the camera meets the floor (or the plane `height_m` above it), in
        odom, projected onto the floor (None: it does not, or too far)."""
        origin = self.odom_T_camera[:3, 3]
        direction = self.direction_to_odom(ray_camera)
        direction = direction / np.linalg.norm(direction)
        denom = float(self.ground_normal_odom @ direction)
        if denom >= -1e-6:  # parallel to or rising away from the floor
            return None
        plane_point = self.ground_point_odom + height_m * self.ground_normal_odom
        t = float(self.ground_normal_odom @ (plane_point - origin)) / denom
        if t <= 0 or t > MAX_GROUND_RANGE_M:
            return None
        return origin + t * direction - height_m * self.ground_normal_odom

    def foot_point(self, k: PinholeIntrinsics, box: tuple[float, float, float, float]) -> tuple[float, float]:
        """Where an upright object in `box` touches the floor, in pixels.

        Walk from the box centre towards the floor as the image sees it (gravity projected into
        the image) until the box edge. On an upright camera that is the bottom-centre; on Spot's
        sideways front cameras "down" runs along the image's x axis, so the bottom edge would be
        wrong.
        """
        x1, y1, x2, y2 = box
        cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        ray = pixel_ray(k, cx, cy)
        down_cam = self.odom_T_camera[:3, :3].T @ -self.ground_normal_odom
        p = ray + 0.05 * down_cam
        if p[2] <= 1e-6:
            return cx, y2
        du = k.fx * p[0] / p[2] + k.cx - cx
        dv = k.fy * p[1] / p[2] + k.cy - cy
        norm = math.hypot(du, dv)
        if norm < 1e-9:  # looking straight down: the centre is the foot
            return cx, cy
        du, dv = du / norm, dv / norm
        half_w, half_h = (x2 - x1) / 2.0, (y2 - y1) / 2.0
        t = min(half_w / abs(du) if abs(du) > 1e-9 else math.inf, half_h / abs(dv) if abs(dv) > 1e-9 else math.inf)
        return cx + t * du, cy + t * dv

    def range_and_bearing(self, p_odom: np.ndarray) -> tuple[float, float]:
        p_body = self.body_T_odom[:3, :3] @ p_odom + self.body_T_odom[:3, 3]
        return math.hypot(p_body[0], p_body[1]), math.atan2(p_body[1], p_body[0])


def pixel_ray(intrinsics: PinholeIntrinsics, u: float, v: float) -> np.ndarray:
    """Direction (camera frame: x right, y down, z forward) through pixel (u, v), z = 1."""
    return np.array([(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy, 1.0])


def _box_depth(depth_m: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]) -> float | None:
    """Median valid depth over the inner half of the box (edges see the background)."""
    dh, dw = depth_m.shape[:2]
    sx, sy = dw / size[0], dh / size[1]
    x1, y1, x2, y2 = box
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 4, (y2 - y1) / 4
    c0, c1 = int(max(0, (cx - hw) * sx)), int(min(dw, math.ceil((cx + hw) * sx)))
    r0, r1 = int(max(0, (cy - hh) * sy)), int(min(dh, math.ceil((cy + hh) * sy)))
    patch = depth_m[r0 : max(r1, r0 + 1), c0 : max(c1, c0 + 1)]
    valid = patch[np.isfinite(patch) & (patch > 0)]
    return float(np.median(valid)) if valid.size else None


def sightings_for(
    frame: Frame,
    detections: Sequence[Detection],
    fiducials: Sequence[FiducialDetection] = (),
) -> list[Sighting]:
    """Place a frame's detections (boxes in original-image pixels) and fiducials in odom."""
    geometry = FrameGeometry.from_frame(frame)
    k = frame.intrinsics
    size = frame.original_size
    out: list[Sighting] = []
    for det in detections:
        position = None
        if geometry is not None and k is not None:
            position = _object_position(frame, geometry, k, det.box, size, det.keypoints)
        sighting = _sighting(frame, det.label, det.score, det.box, size, geometry, position, None)
        out.append(dataclasses.replace(sighting, keypoints=det.keypoints) if det.keypoints else sighting)
    for tag in fiducials:
        position, yaw = None, None
        if geometry is not None and tag.has_pose:
            p = geometry.camera_to_odom(np.asarray(tag.camera_t_tag, dtype=np.float64))
            position = p
            normal = geometry.direction_to_odom(np.asarray(tag.camera_R_tag, dtype=np.float64)[:, 2])
            if math.hypot(normal[0], normal[1]) > 1e-3:  # a tag lying flat has no facing direction
                yaw = math.atan2(normal[1], normal[0])
        out.append(_sighting(frame, tag.label, 1.0, tag.box, size, geometry, position, yaw))
    return out


def _object_position(
    frame: Frame,
    geometry: FrameGeometry,
    k: PinholeIntrinsics,
    box: tuple[float, float, float, float],
    size: tuple[int, int],
    keypoints: tuple[tuple[float, float, float], ...] | None = None,
) -> np.ndarray | None:
    x1, y1, x2, y2 = box
    if frame.depth_m is not None:
        depth = _box_depth(frame.depth_m, box, size)
        if depth is not None:
            return geometry.camera_to_odom(pixel_ray(k, (x1 + x2) / 2, (y1 + y2) / 2) * depth)
    ankles = _ankles(keypoints)
    if ankles is not None:
        # The ankles are where the person stands, whatever the camera's roll; a box mapped back
        # from a rotated (sideways) camera only bounds the person, so its "bottom" is approximate.
        return geometry.ground_hit(pixel_ray(k, *ankles), height_m=ANKLE_HEIGHT_M)
    return geometry.ground_hit(pixel_ray(k, *geometry.foot_point(k, box)))


ANKLE_HEIGHT_M = 0.08  # a standing adult's ankle joint above the floor
_ANKLES = (15, 16)  # COCO keypoint indices: left and right ankle
_ANKLE_MIN_SCORE = 0.3


def _ankles(keypoints: tuple[tuple[float, float, float], ...] | None) -> tuple[float, float] | None:
    """The mean of the visible ankles (pixels), or None."""
    if not keypoints or len(keypoints) <= max(_ANKLES):
        return None
    seen = [keypoints[i] for i in _ANKLES if keypoints[i][2] >= _ANKLE_MIN_SCORE]
    if not seen:
        return None
    return sum(p[0] for p in seen) / len(seen), sum(p[1] for p in seen) / len(seen)


def _sighting(
    frame: Frame,
    label: str,
    score: float,
    box: tuple[float, float, float, float],
    size: tuple[int, int],
    geometry: FrameGeometry | None,
    position: np.ndarray | None,
    yaw: float | None,
) -> Sighting:
    distance = bearing = None
    pos = None
    if position is not None and geometry is not None:
        distance, bearing = geometry.range_and_bearing(position)
        pos = (float(position[0]), float(position[1]), float(position[2]))
    return Sighting(
        label=label,
        score=float(score),
        camera=frame.camera,
        box=tuple(float(v) for v in box),  # type: ignore[arg-type]
        image_size=size,
        time_local=frame.acquisition_time_local,
        position_odom=pos,
        distance_m=distance,
        bearing_rad=bearing,
        yaw_odom=yaw,
    )
