"""Grey textures for clutter, walls and floors other than concrete: drawn with NumPy and OpenCV
from fixed seeds, so every run (and every dataset built with the same seed) looks the same.

Surfaces are stored at `SURFACE_PX_PER_M` and tiled by the plane that uses them (`tile_for`):
a 3 m wall repeats a 1 m brick patch three times rather than stretching it.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from sim.render.textures import Texture, make_texture

SURFACE_PX_PER_M = 128  # texels per metre of a 1 m x 1 m surface patch
_PATCH = SURFACE_PX_PER_M


def _noise(rng: np.random.Generator, size: int, cells: int, amplitude: float) -> np.ndarray:
    """Smooth periodic value noise: a `cells` x `cells` grid upsampled with wrap-around."""
    grid = rng.normal(0.0, amplitude, size=(cells, cells)).astype(np.float32)
    big = cv2.resize(np.tile(grid, (3, 3)), (3 * size, 3 * size), interpolation=cv2.INTER_CUBIC)
    return big[size : 2 * size, size : 2 * size]


def _grain(rng: np.random.Generator, base: float, octaves: tuple[tuple[int, float], ...], fine: float) -> np.ndarray:
    img = np.full((_PATCH, _PATCH), base, np.float32)
    for cells, amplitude in octaves:
        img += _noise(rng, _PATCH, cells, amplitude)
    return img + rng.normal(0.0, fine, size=img.shape).astype(np.float32)


def _brick(rng: np.random.Generator) -> np.ndarray:
    img = _grain(rng, 120.0, ((4, 8.0), (16, 6.0)), 5.0)
    rows, brick_w = 8, _PATCH // 4  # 1 m: 8 courses of 4 bricks
    course = _PATCH // rows
    for r in range(rows):
        img[r * course : r * course + 2, :] = 185.0  # mortar
        offset = (brick_w // 2) * (r % 2)
        for c in range(-1, 5):
            x = c * brick_w + offset
            if 0 <= x < _PATCH:
                img[r * course : (r + 1) * course, x : x + 2] = 185.0
            img[r * course + 2 : (r + 1) * course, max(0, x + 2) : max(0, x + brick_w)] += rng.normal(0.0, 14.0)
    return img


def _planks(rng: np.random.Generator, base: float, count: int) -> np.ndarray:
    img = _grain(rng, base, ((2, 6.0),), 3.0)
    streaks = cv2.resize(rng.normal(0.0, 10.0, size=(_PATCH, 6)).astype(np.float32), (_PATCH, _PATCH))
    img += streaks.T  # grain runs along the planks (rows)
    width = _PATCH // count
    for i in range(count):
        img[i * width : (i + 1) * width] += rng.normal(0.0, 12.0)
        img[i * width : i * width + 2] -= 45.0
    return img


def _panels(rng: np.random.Generator) -> np.ndarray:
    img = _grain(rng, 170.0, ((4, 5.0),), 2.0)
    img[:, : _PATCH // 2] += 18.0  # two panels a metre, one a little lighter
    for x in (0, _PATCH // 2):
        img[:, x : x + 3] = 90.0
    img[int(0.9 * _PATCH) :, :] = 60.0  # skirting board
    return img


def _cardboard(rng: np.random.Generator) -> np.ndarray:
    img = _grain(rng, 150.0, ((3, 6.0), (24, 3.0)), 3.0)
    img[:, _PATCH // 2 - 6 : _PATCH // 2 + 6] = 200.0  # a strip of tape across the top
    img[: _PATCH // 10] -= 25.0  # flap edge
    return img


def _tiles(rng: np.random.Generator) -> np.ndarray:
    img = _grain(rng, 150.0, ((2, 5.0), (8, 4.0)), 3.0)
    tile = _PATCH // 2
    for i in range(2):
        for j in range(2):
            img[i * tile : (i + 1) * tile, j * tile : (j + 1) * tile] += rng.normal(0.0, 10.0)
    img[::tile, :] -= 30.0
    img[:, ::tile] -= 30.0
    return img


def _carpet(rng: np.random.Generator) -> np.ndarray:
    return _grain(rng, 95.0, ((4, 10.0), (32, 8.0)), 12.0)


_DRAWERS = {
    "brick": _brick,
    "plaster": lambda rng: _grain(rng, 185.0, ((2, 8.0), (8, 5.0), (32, 3.0)), 2.0),
    "panels": _panels,
    "cardboard": _cardboard,
    "wood": lambda rng: _planks(rng, 135.0, 6),
    "plain": lambda rng: _grain(rng, 140.0, ((2, 4.0),), 1.5),
    "tiles": _tiles,
    "carpet": _carpet,
}


@lru_cache(maxsize=16)
def surface_patch(surface: str) -> np.ndarray:
    """A seamless 1 m x 1 m grey patch of `surface` (uint8)."""
    drawer = _DRAWERS[surface]
    rng = np.random.default_rng(sorted(_DRAWERS).index(surface) + 100)
    patch = np.clip(drawer(rng), 0, 255).astype(np.uint8)
    patch.flags.writeable = False
    return patch


@lru_cache(maxsize=256)
def tiled_surface(surface: str, tiles_x: int, tiles_y: int, shade: float) -> Texture:
    """`surface` repeated tiles_x x tiles_y times (one tile per metre of the plane), times `shade`."""
    tiled = np.tile(surface_patch(surface), (max(1, tiles_y), max(1, tiles_x))).astype(np.float32)
    return make_texture(np.clip(tiled * shade, 0, 255).astype(np.uint8))


def tile_for(surface: str, width_m: float, height_m: float, shade: float) -> Texture:
    """The texture for a `width_m` x `height_m` face: about one patch per metre (at most 12 a
    side: the texture stays small), at least one; `shade` darkens faces turned from the light."""
    return tiled_surface(surface, min(12, max(1, round(width_m))), min(12, max(1, round(height_m))), shade)
