"""From odom to pixels: the camera's pose, near-plane clipping, pinhole projection, pixel boxes,
and sub-pixel polygon fill and blending.

Shared by everything that paints or tests visibility (floor, objects, tags), so the clipping and
rounding rules are one set: points behind the camera never wrap around, a polygon's pixel box is
clipped to the image, and polygon edges are placed to 1/16 pixel.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from bosdyn.client.math_helpers import SE3Pose

from sim.cameras import CameraSpec

NEAR_M = 0.05  # near clipping plane (camera z)
_SUBPIXEL_SHIFT = 4  # fillPoly vertices with 4 fractional bits


def odom_tform_camera(camera: CameraSpec, odom_tform_body: SE3Pose) -> SE3Pose:
    return odom_tform_body * camera.body_tform_camera


def camera_rt(camera: CameraSpec, odom_tform_body: SE3Pose) -> tuple[np.ndarray, np.ndarray]:
    """(odom_R_camera 3x3, camera origin in odom)."""
    mat = odom_tform_camera(camera, odom_tform_body).to_matrix()
    return mat[:3, :3], mat[:3, 3]


def to_camera(points_odom: np.ndarray, rot: np.ndarray, origin: np.ndarray) -> np.ndarray:
    return (points_odom - origin) @ rot


def clip_polygon(points: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman against one half-space: keep where `values` (linear in the points) <= 0."""
    out: list[np.ndarray] = []
    n = len(points)
    for i in range(n):
        p, q = points[i], points[(i + 1) % n]
        vp, vq = values[i], values[(i + 1) % n]
        if vp <= 0.0:
            out.append(p)
        if (vp <= 0.0) != (vq <= 0.0):
            out.append(p + (q - p) * (vp / (vp - vq)))
    return np.array(out) if out else np.zeros((0, points.shape[1]))


def project(points_cam: np.ndarray, k: np.ndarray) -> np.ndarray:
    proj = points_cam @ k.T
    return proj[:, :2] / proj[:, 2:3]


def image_rect(camera: CameraSpec) -> np.ndarray:
    w, h = camera.width, camera.height
    return np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])


def roi(uv: np.ndarray, camera: CameraSpec) -> tuple[int, int, int, int] | None:
    """Integer pixel box (x0, y0, x1, y1) exclusive, covering `uv`, clipped to the image."""
    x0 = max(0, int(math.floor(uv[:, 0].min())))
    y0 = max(0, int(math.floor(uv[:, 1].min())))
    x1 = min(camera.width, int(math.ceil(uv[:, 0].max())) + 1)
    y1 = min(camera.height, int(math.ceil(uv[:, 1].max())) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def shift(x0: int, y0: int) -> np.ndarray:
    """Homography moving image pixels into a box whose top-left is (x0, y0)."""
    return np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])


def fill(mask: np.ndarray, uv: np.ndarray, offset: tuple[int, int], value: int) -> None:
    # Clamp so fixed-point coordinates stay in int32 even for vertices right at the near plane.
    pts = np.clip(uv - np.array(offset, dtype=float), -1e5, 1e5)
    fixed = np.round(pts * (1 << _SUBPIXEL_SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [fixed], value, lineType=cv2.LINE_8, shift=_SUBPIXEL_SHIFT)


def blend(dst: np.ndarray, src: np.ndarray, coverage: np.ndarray) -> None:
    """dst = src over dst with 0..255 coverage, in place (uint8)."""
    cov = coverage.astype(np.uint16)
    mixed = (src.astype(np.uint16) * cov + dst.astype(np.uint16) * (255 - cov) + 127) // 255
    dst[...] = mixed.astype(np.uint8)
