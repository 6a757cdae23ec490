"""Turning a camera's image upright for the detector, and mapping boxes back.

Spot's front cameras are mounted sideways. The SDK examples rotate frontleft by -78 degrees,
frontright by -102 and right by 180 with `scipy.ndimage.rotate(image, angle)`: counter-clockwise
positive, canvas expanded to hold the whole rotated image. `UprightRotation` does the same with
one `cv2.warpAffine` (or an exact `cv2.rotate` for multiples of 90 degrees) and keeps the inverse
affine, so a box found in the rotated image maps back to the original image, whose pixels the
intrinsics describe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

_RIGHT_ANGLE_ROTATE = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}


@dataclass(frozen=True, eq=False)
class UprightRotation:
    """Rotation of a `source_size` image by `angle_deg` (counter-clockwise) onto an expanded canvas."""

    angle_deg: float
    source_size: tuple[int, int]  # width, height of the original image
    size: tuple[int, int]  # width, height of the rotated canvas
    forward: np.ndarray  # 2 x 3 affine, original pixel -> rotated pixel
    inverse: np.ndarray  # 2 x 3 affine, rotated pixel -> original pixel

    @property
    def is_identity(self) -> bool:
        return self.angle_deg % 360.0 == 0.0

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The rotated image (the input itself when there is nothing to rotate)."""
        if self.is_identity:
            return image
        quarter = int(self.angle_deg % 360.0)
        if quarter in _RIGHT_ANGLE_ROTATE and float(quarter) == self.angle_deg % 360.0:
            return cv2.rotate(image, _RIGHT_ANGLE_ROTATE[quarter])
        return cv2.warpAffine(
            image, self.forward, self.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )

    def scaled_to(self, size: tuple[int, int]) -> UprightRotation:
        """The same rotation onto a `size` (width, height) canvas: rotate and resize in one warp.

        The detector resizes to its input size anyway; doing both in one `warpAffine` writes the
        small image once instead of a full rotated canvas plus a resize.
        """
        return self.cropped_to((0.0, 0.0, float(self.size[0]), float(self.size[1])), size)

    def cropped_to(self, region: tuple[float, float, float, float], size: tuple[int, int]) -> UprightRotation:
        """The rotation, then `region` (x1, y1, x2, y2 of the rotated canvas, continuous
        coordinates; it may reach past the canvas, which reads as black) resized to `size`
        (width, height): one warp, whose inverse maps boxes found in it back to the original."""
        x1, y1, x2, y2 = region
        sx, sy = size[0] / (x2 - x1), size[1] / (y2 - y1)
        # Continuous coordinates: u = (x - x1) * s; pixel centres (index + 0.5) as cv2.resize maps them.
        crop = np.array([[sx, 0.0, 0.5 * sx - 0.5 - x1 * sx], [0.0, sy, 0.5 * sy - 0.5 - y1 * sy], [0.0, 0.0, 1.0]])
        forward = (crop @ np.vstack([self.forward, [0.0, 0.0, 1.0]]))[:2]
        return _Warp(self.angle_deg, self.source_size, size, forward, cv2.invertAffineTransform(forward))

    def boxes_from_source(self, boxes: np.ndarray) -> np.ndarray:
        """[K, 4] boxes in the original image -> their bounding boxes on the rotated canvas
        (continuous coordinates, not clipped)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if self.is_identity or boxes.shape[0] == 0:
            return boxes.copy()
        x1, y1, x2, y2 = boxes.T
        corners = np.stack([x1, y1, x2, y1, x2, y2, x1, y2], axis=1).reshape(-1, 2) - 0.5
        on_canvas = (corners @ self.forward[:, :2].T + self.forward[:, 2] + 0.5).reshape(-1, 4, 2)
        return np.concatenate([on_canvas.min(axis=1), on_canvas.max(axis=1)], axis=1)

    def points_to_source(self, points: np.ndarray) -> np.ndarray:
        """[N, 2] rotated-image pixels -> original-image pixels."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        return pts @ self.inverse[:, :2].T + self.inverse[:, 2]

    def coords_to_source(self, points: np.ndarray) -> np.ndarray:
        """[N, 2] continuous coordinates in the rotated image -> the original image's.

        Continuous coordinates are what boxes and keypoints use: pixel i spans [i, i + 1), so
        its centre is i + 0.5; `points_to_source` takes pixel indices (centre = i). Not clipped:
        a point may fall outside the original image (e.g. in the rotated canvas's corners).
        """
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        if self.is_identity:
            return pts.copy()
        return self.points_to_source(pts - 0.5) + 0.5

    def boxes_to_source(self, boxes: np.ndarray) -> np.ndarray:
        """[K, 4] x1 y1 x2 y2 boxes in the rotated image -> their bounding boxes in the original.

        The 4 corners are rotated back and bounded, then clipped to the original image.
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        if self.is_identity or boxes.shape[0] == 0:
            return boxes.copy()
        x1, y1, x2, y2 = boxes.T
        corners = np.stack([x1, y1, x2, y1, x2, y2, x1, y2], axis=1).reshape(-1, 2)
        back = self.coords_to_source(corners).reshape(-1, 4, 2)
        w, h = self.source_size
        out = np.concatenate([back.min(axis=1), back.max(axis=1)], axis=1)
        np.clip(out[:, 0::2], 0, w, out=out[:, 0::2])
        np.clip(out[:, 1::2], 0, h, out=out[:, 1::2])
        return out


@lru_cache(maxsize=64)
def upright_rotation(angle_deg: float, width: int, height: int) -> UprightRotation:
    """The rotation for an image of `width` x `height` (cached: one per camera and size)."""
    angle = float(angle_deg)
    if angle % 360.0 == 0.0:
        eye = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        return UprightRotation(angle, (width, height), (width, height), eye, eye.copy())
    rad = math.radians(angle)
    c, s = abs(math.cos(rad)), abs(math.sin(rad))
    # Canvas size and pixel-centre convention as scipy.ndimage.rotate(reshape=True).
    new_w = int(width * c + height * s + 0.5)
    new_h = int(width * s + height * c + 0.5)
    forward = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), angle, 1.0)
    forward[0, 2] += (new_w - 1) / 2.0 - (width - 1) / 2.0
    forward[1, 2] += (new_h - 1) / 2.0 - (height - 1) / 2.0
    inverse = cv2.invertAffineTransform(forward)
    return UprightRotation(angle, (width, height), (new_w, new_h), forward, inverse)


class _Warp(UprightRotation):
    """A rotation whose canvas was rescaled: always one warpAffine (no exact-quarter shortcut)."""

    @property
    def is_identity(self) -> bool:
        return False

    def apply(self, image: np.ndarray) -> np.ndarray:
        return cv2.warpAffine(image, self.forward, self.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
