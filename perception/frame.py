"""The plain data a camera frame becomes once it leaves the robot's image service.

A `Frame` keeps everything needed to act on a detection later: which camera, when it was
taken (robot clock and local clock), the pinhole intrinsics and the transforms snapshot, so a
pixel plus a depth becomes a 3D point in `vision` / `odom`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PinholeIntrinsics:
    """Pinhole model of the image as delivered by the robot (before any rotation)."""

    fx: float
    fy: float
    cx: float
    cy: float

    def camera_matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


@dataclass
class Frame:
    """One image from one camera.

    `image` is the decoded pixel array as the robot sent it (H x W grey uint8, H x W x 3 BGR
    uint8, or H x W float32 metres for depth). `encoded` keeps the original JPEG bytes when the
    frame arrived as JPEG, so recordings store exactly what the robot sent.
    """

    camera: str
    image: np.ndarray
    acquisition_time_robot: float  # seconds, robot clock
    acquisition_time_local: float  # seconds, this machine's clock (time.time()), via time sync
    intrinsics: PinholeIntrinsics | None = None
    frame_name_image_sensor: str = ""
    transforms_snapshot: Any = None  # bosdyn.api.geometry_pb2.FrameTreeSnapshot
    encoded: bytes | None = None  # original JPEG bytes, if any
    is_depth: bool = False
    seq: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # Decoded-image pixels per original pixel: < 1 when a large JPEG was decoded reduced
    # (IMREAD_REDUCED_*) to the size the detector needs. Intrinsics and boxes stay in the
    # original image's pixels.
    image_scale: float = 1.0
    # Depth in metres registered to this image (same view, e.g. a `*_depth_in_visual_frame`
    # source), NaN where unknown; any resolution (pixels are scaled to it). None: no depth.
    depth_m: np.ndarray | None = None

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def original_size(self) -> tuple[int, int]:
        """(width, height) of the image as the camera took it (before any reduced decode)."""
        return round(self.width / self.image_scale), round(self.height / self.image_scale)
