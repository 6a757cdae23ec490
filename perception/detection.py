"""Detections: what the detector and the fiducial finder report about one frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detection:
    """An object found by the detector, in pixels of the original (unrotated) image.

    Pose models (MoveNet) add `keypoints`: (x, y, score) per body point, in COCO keypoint order
    (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles; left before right), in the
    same pixels as the box. A point the model could not see has a low score, not a missing entry.
    """

    label: str
    class_id: int
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    # A person model's 17 COCO keypoints (nose, eyes, ears, shoulders, elbows, wrists, hips,
    # knees, ankles) as (x, y, score), in the same pixels as the box; None for other models.
    keypoints: tuple[tuple[float, float, float], ...] | None = None
    model: str = ""  # which model found it (its file's stem), after the perceiver merged them

    @property
    def center(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.box
        return (x1 + x2) / 2.0, (y1 + y2) / 2.0

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class FiducialDetection:
    """An AprilTag found in a frame, with its pose in the camera's optical frame.

    `camera_t_tag` is the translation (metres) and `camera_R_tag` the 3x3 rotation of the tag
    in the camera frame (x right, y down, z forward), as OpenCV's solvePnP returns them.
    """

    tag_id: int
    corners: np.ndarray  # 4 x 2 pixel corners in the original image
    camera_R_tag: np.ndarray
    camera_t_tag: np.ndarray
    size_m: float

    @property
    def label(self) -> str:
        return f"tag:{self.tag_id}"

    @property
    def has_pose(self) -> bool:
        """False when the frame had no intrinsics: camera_R_tag / camera_t_tag are then NaN."""
        return bool(np.all(np.isfinite(self.camera_t_tag)))

    @property
    def distance(self) -> float:
        return float(np.linalg.norm(self.camera_t_tag))

    @property
    def box(self) -> tuple[float, float, float, float]:
        xs, ys = self.corners[:, 0], self.corners[:, 1]
        return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


@dataclass(frozen=True)
class Sighting:
    """A detection or fiducial placed in the world: what the cue engine reasons about.

    Built by `perception.localize` from a frame's detections, its intrinsics and its transforms
    snapshot. Positions are in the `odom` frame; `distance_m` / `bearing_rad` are relative to
    the body (bearing 0 = straight ahead, positive = to the left). Any of them may be None when
    the geometry is unknown (e.g. a replayed video without intrinsics).
    """

    label: str  # COCO label ("person", "stop sign") or "tag:<id>"
    score: float
    camera: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the original image
    image_size: tuple[int, int]  # width, height of the original image
    time_local: float  # acquisition time, local clock
    position_odom: tuple[float, float, float] | None = None
    distance_m: float | None = None
    bearing_rad: float | None = None
    yaw_odom: float | None = None  # tags: direction the tag's face points, in odom
    keypoints: tuple[tuple[float, float, float], ...] | None = None  # as Detection.keypoints


@dataclass
class FrameResult:
    """Everything perception found in one frame, handed to the cue engine."""

    camera: str
    seq: int
    time_robot: float
    time_local: float
    sightings: list[Sighting]
    detect_ms: float = 0.0
    age_at_detection_s: float = 0.0
