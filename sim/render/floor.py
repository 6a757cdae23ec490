"""The floor (z = 0 in odom) as one camera sees it: textured near, its mean grey far, and depth.

The floor is painted in bands of camera depth, each with a coarser level of the floor texture
farther away (mip-mapping by distance: no moire), then the floor's mean grey out to the horizon.
A band is an image polygon found by clipping the image rectangle with two half-planes, which is
exact because a pixel ray's depth to the floor is `-height / f(u, v)` with `f` linear in the
pixel: no per-pixel ray casting, one warp of the periodic texture per band.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from sim.cameras import CameraSpec
from sim.render.canvas import DEPTH_MAX_RANGE_M, Canvas
from sim.render.projection import clip_polygon, fill, image_rect, roi, shift
from sim.render.surfaces import surface_patch
from sim.render.textures import FLOOR_PX_PER_M, FLOOR_TILE_M, floor_texture, frozen

# Extent (metres) each floor mip level is pre-tiled to, so the floor seen in that level's distance
# band maps inside the image and warpPerspective never needs its (slow) wrap-around path.
FLOOR_LEVEL_EXTENT_M = (12.0, 16.0, 24.0, 32.0, 48.0)


@lru_cache(maxsize=8)
def floor_pyramid(kind: str = "concrete") -> tuple[np.ndarray, ...]:
    """Mip levels of the floor, level L at FLOOR_PX_PER_M / 2**L, tiled to FLOOR_LEVEL_EXTENT_M[L]."""
    pattern = floor_pattern(kind)
    pad = 8
    levels = []
    for extent in FLOOR_LEVEL_EXTENT_M:
        repeats = int(round(extent / FLOOR_TILE_M))
        levels.append(frozen(np.ascontiguousarray(np.tile(pattern, (repeats, repeats)))))
        padded = np.pad(pattern, pad, mode="wrap")  # blur with wrap-around: each level stays seamless
        pattern = cv2.pyrDown(padded)[pad // 2 : -pad // 2, pad // 2 : -pad // 2].copy()
    return tuple(levels)


@lru_cache(maxsize=8)
def floor_mean_grey(kind: str = "concrete") -> int:
    """What the floor looks like from far away."""
    return int(round(float(floor_pattern(kind).mean())))

@lru_cache(maxsize=8)
def floor_pattern(kind: str) -> np.ndarray:
    """The seamless 4 m x 4 m floor patch of `kind`: concrete, or a `sim.render.surfaces` pattern."""
    if kind == "concrete":
        return floor_texture()
    tiles = np.tile(surface_patch(kind), (int(FLOOR_TILE_M), int(FLOOR_TILE_M)))
    px = int(FLOOR_TILE_M * FLOOR_PX_PER_M)
    return frozen(cv2.resize(tiles, (px, px), interpolation=cv2.INTER_AREA))


# Floor texture mip level by camera depth: (band's far edge in metres, pyramid level). Beyond the
# last band the floor is its mean grey up to the horizon; the backdrop is above the horizon.
FLOOR_BANDS: tuple[tuple[float, int], ...] = ((2.5, 0), (4.0, 1), (6.5, 2), (10.0, 3))


class _DepthBands:
    """Image polygons where the floor lies between two camera depths, for one camera pose."""

    def __init__(self, camera: CameraSpec, up: np.ndarray, height: float) -> None:
        # Camera-frame up is rot[2, :]. A pixel ray r = ((u-cx)/fx, (v-cy)/fy, 1) goes down when
        # f(u, v) = up . r < 0 and meets the floor at camera depth -height / f(u, v); f is linear.
        self.a, self.b = float(up[0] / camera.fx), float(up[1] / camera.fy)
        self.c = float(up[2] - up[0] * camera.cx / camera.fx - up[1] * camera.cy / camera.fy)
        self.height = height
        self.rect = image_rect(camera)
        self.f_rect = self.rect @ np.array([self.a, self.b]) + self.c

    def band(self, near: float, far: float | None) -> np.ndarray:
        """Image polygon where the floor is between camera depths `near` and `far` (None: horizon)."""
        height = self.height
        poly, values = self.rect, self.f_rect
        if far is not None:  # depth <= far  <=>  f <= -height / far
            poly = clip_polygon(poly, values + height / far)
        else:
            poly = clip_polygon(poly, values)
        if near > 0.0 and len(poly) >= 3:  # depth >= near  <=>  f >= -height / near
            poly = clip_polygon(poly, -(poly @ np.array([self.a, self.b]) + self.c) - height / near)
        return poly


def paint_floor(canvas: Canvas, rot: np.ndarray, origin: np.ndarray, kind: str = "concrete") -> None:
    """Paint the floor into the canvas's grey image and depth (camera pose `rot`, `origin` in odom)."""
    height = float(origin[2])
    if height <= 0.0:
        return  # camera at or below the floor: only backdrop
    up = rot[2, :]
    bands = _DepthBands(canvas.camera, up, height)
    if canvas.grey is not None:
        _paint_floor_grey(canvas, canvas.grey, bands, rot, origin, kind)
    if canvas.depth is not None:
        poly = bands.band(0.0, DEPTH_MAX_RANGE_M)
        box = roi(poly, canvas.camera) if len(poly) >= 3 else None
        if box is not None:
            x0, y0, x1, y1 = box
            # Floor plane in camera coordinates: up . p = -height.
            canvas.depth[y0:y1, x0:x1] = canvas.plane_depth(up, -height, box)


def _paint_floor_grey(
    canvas: Canvas, grey: np.ndarray, bands: _DepthBands, rot: np.ndarray, origin: np.ndarray, kind: str
) -> None:
    # floor (X, Y, 1) -> image: K R^T [e1, e2, -origin].
    floor_to_img = canvas.k @ rot.T @ np.column_stack([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], -origin])
    img_to_floor_dir = rot @ np.linalg.inv(canvas.k)  # pixel (u, v, 1) -> ray direction in odom
    near = 0.0
    # Coarser texture levels farther away (mip-mapping by distance bands: no moire), then
    # the floor's mean grey out to the horizon.
    for far, level in FLOOR_BANDS:
        poly = bands.band(near, far)
        near = far
        box = roi(poly, canvas.camera) if len(poly) >= 3 else None
        if box is None:
            continue
        # Where on the floor this band is, to place the (periodic) texture over it.
        rays = np.column_stack([poly, np.ones(len(poly))]) @ img_to_floor_dir.T
        ground = origin[:2] + rays[:, :2] * (-bands.height / np.minimum(rays[:, 2:3], -1e-9))
        _paint_band(grey, poly, box, floor_pyramid(kind)[level], level, ground, floor_to_img)
    poly = bands.band(near, None)
    if len(poly) >= 3:
        fill(grey, poly, (0, 0), floor_mean_grey(kind))


def _paint_band(
    grey: np.ndarray, poly: np.ndarray, box: tuple[int, int, int, int], texture: np.ndarray, level: int,
    ground: np.ndarray, floor_to_img: np.ndarray,
) -> None:
    """Warp floor mip `level` into the band `poly` whose corners lie at `ground` (odom x, y)."""
    x0, y0, x1, y1 = box
    period = FLOOR_TILE_M
    corner = period * np.floor(ground.min(axis=0) / period)
    # Level-L texel i sits on level-0 texel 2**L * i, whose centre is (i + 0.5) / ppm.
    ppm = float(FLOOR_PX_PER_M)
    step = 2.0**level / ppm
    texel_to_floor = np.array(
        [[step, 0.0, corner[0] + 0.5 / ppm], [0.0, step, corner[1] + 0.5 / ppm], [0.0, 0.0, 1.0]]
    )
    fits = bool(np.all(ground.max(axis=0) - corner < FLOOR_LEVEL_EXTENT_M[level]))
    warped = cv2.warpPerspective(
        texture,
        shift(x0, y0) @ floor_to_img @ texel_to_floor,
        (x1 - x0, y1 - y0),
        flags=cv2.INTER_LINEAR,
        # Pixels outside the band are masked off; inside, the tiled texture covers the band.
        borderMode=cv2.BORDER_CONSTANT if fits else cv2.BORDER_WRAP,
    )
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    fill(mask, poly, (x0, y0), 255)
    cv2.copyTo(warped, mask, grey[y0:y1, x0:x1])
