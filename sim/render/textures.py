"""Grey textures for the simulated world, generated once from OpenCV and a shipped photo.

Each texture is a `Texture`: a mip pyramid of grey images (level 0 = full resolution, each
next level half the size) and, for cut-out shapes, a matching alpha pyramid (255 = opaque).
Nothing is downloaded: tags come from OpenCV's aruco dictionary, the person from a public-domain
astronaut photo shipped in `sim/assets/` (`sim.render.person`), the rest is drawn. Every texture
is built once and frozen: renders on every camera thread share them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

WHITE = 235  # printed white and black as a grey camera sees them (never fully saturated)
BLACK = 25
TAG_CELL_PX = 16  # texture pixels per tag cell (36h11 markers are 8 cells wide including the black border)
TAG_MARGIN_CELLS = 2  # white quiet zone around the black square, in cells
FLOOR_TILE_M = 4.0  # the floor texture repeats every 4 m
FLOOR_PX_PER_M = 100


@dataclass(frozen=True)
class Texture:
    grey: tuple[np.ndarray, ...]  # mip levels, uint8
    alpha: tuple[np.ndarray, ...] | None = None  # same shapes, uint8; None = fully opaque

    @property
    def width(self) -> int:
        return int(self.grey[0].shape[1])

    @property
    def height(self) -> int:
        return int(self.grey[0].shape[0])


def frozen(image: np.ndarray) -> np.ndarray:
    """Shared by every render (and thread): make accidental writes fail loudly."""
    image.flags.writeable = False
    return image


def _pyramid(image: np.ndarray, min_side: int = 8) -> tuple[np.ndarray, ...]:
    levels = [np.ascontiguousarray(image)]
    while min(levels[-1].shape[:2]) >= 2 * min_side:
        levels.append(cv2.pyrDown(levels[-1]))
    return tuple(frozen(level) for level in levels)


def make_texture(grey: np.ndarray, alpha: np.ndarray | None = None) -> Texture:
    grey_levels = _pyramid(grey)
    if alpha is None:
        return Texture(grey_levels)
    alpha_levels = _pyramid(alpha)  # same pyrDown steps: texel i of level L sits at 2**L * i of level 0
    return Texture(grey_levels, alpha_levels)


# --- AprilTag board ----------------------------------------------------------------------------

TAG_DICTIONARY = cv2.aruco.DICT_APRILTAG_36h11


@lru_cache(maxsize=64)
def tag_texture(tag_id: int) -> Texture:
    """White board with the tag36h11 marker; the black square spans 8 cells, the margin 2 cells a side."""
    dictionary = cv2.aruco.getPredefinedDictionary(TAG_DICTIONARY)
    marker = cv2.aruco.generateImageMarker(dictionary, tag_id, 8 * TAG_CELL_PX, borderBits=1)
    marker = np.where(marker > 127, WHITE, BLACK).astype(np.uint8)
    margin = TAG_MARGIN_CELLS * TAG_CELL_PX
    board = cv2.copyMakeBorder(marker, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=WHITE)
    return make_texture(board)


def tag_board_scale() -> float:
    """Board edge / black-square edge."""
    return (8 + 2 * TAG_MARGIN_CELLS) / 8.0


# --- Stop sign ---------------------------------------------------------------------------------

STOP_SIGN_PX = 256  # texture width across flats


def octagon(center: tuple[float, float], across_flats: float) -> np.ndarray:
    """Vertices of a regular octagon with flat top, bottom and sides."""
    radius = across_flats / 2.0 / np.cos(np.pi / 8)
    angles = np.pi / 8 + np.arange(8) * np.pi / 4
    return np.stack([center[0] + radius * np.cos(angles), center[1] + radius * np.sin(angles)], axis=1)


@lru_cache(maxsize=1)
def stop_sign_texture() -> Texture:
    """Red octagon with white rim and white STOP letters, as a grey camera sees the colours."""
    size = STOP_SIGN_PX
    shift = 4  # subpixel vertices for smooth edges
    colour = np.zeros((size, size, 3), np.uint8)
    alpha = np.zeros((size, size), np.uint8)
    centre = ((size - 1) / 2.0, (size - 1) / 2.0)

    def poly(across: float) -> np.ndarray:
        return np.round(octagon(centre, across) * (1 << shift)).astype(np.int32)

    cv2.fillPoly(alpha, [poly(size)], 255, lineType=cv2.LINE_AA, shift=shift)
    cv2.fillPoly(colour, [poly(size)], (240, 240, 240), lineType=cv2.LINE_AA, shift=shift)
    red = (45, 35, 195)  # BGR of sign red
    cv2.fillPoly(colour, [poly(size * 0.92)], red, lineType=cv2.LINE_AA, shift=shift)
    font = cv2.FONT_HERSHEY_DUPLEX
    thickness = max(2, size // 28)
    (text_w, text_h), _ = cv2.getTextSize("STOP", font, 1.0, thickness)
    scale = 0.72 * size / text_w
    (text_w, text_h), _ = cv2.getTextSize("STOP", font, scale, thickness)
    origin = (int(round((size - text_w) / 2.0)), int(round((size + text_h) / 2.0)))
    cv2.putText(colour, "STOP", origin, font, scale, (240, 240, 240), thickness, cv2.LINE_AA)
    grey = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
    return make_texture(grey, alpha)


# --- Person (the person itself: `sim.render.person`) ----------------------------------------


@lru_cache(maxsize=1)
def shadow_texture() -> Texture:
    """A soft dark blob for the floor under a person's feet (alpha at most about half)."""
    size = 64
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    r2 = ((xs - (size - 1) / 2) / (size / 2)) ** 2 + ((ys - (size - 1) / 2) / (size / 2)) ** 2
    alpha = np.clip(120.0 * np.exp(-3.0 * r2) * (r2 < 1.0), 0, 255).astype(np.uint8)  # < 128: no depth
    return make_texture(np.full((size, size), 40, np.uint8), alpha)


# --- Floor ---------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def floor_texture() -> np.ndarray:
    """A seamless 4 m x 4 m patch of weathered concrete: blotches at several scales, fine grain,
    and faint expansion joints every 2 m.

    Deliberately irregular: a grid of strong tile lines converging to the horizon reads as an
    umbrella canopy to COCO detectors (measured with the default model).
    """
    px = int(FLOOR_TILE_M * FLOOR_PX_PER_M)
    rng = np.random.default_rng(11)
    floor = np.full((px, px), 128.0, np.float32)
    # (cells across the patch, amplitude): value noise on periodic grids, smoothly upsampled.
    for cells, amplitude in ((2, 10.0), (8, 9.0), (32, 6.0), (100, 5.0)):
        grid = rng.normal(0.0, amplitude, size=(cells, cells)).astype(np.float32)
        tiled = np.tile(grid, (3, 3))  # upsample with wrap-around so the patch stays seamless
        big = cv2.resize(tiled, (3 * px, 3 * px), interpolation=cv2.INTER_CUBIC)
        floor += big[px : 2 * px, px : 2 * px]
    floor += rng.normal(0.0, 4.0, size=floor.shape).astype(np.float32)
    joints = (np.arange(px) % (2 * FLOOR_PX_PER_M)) < 2
    floor[joints, :] -= 18.0
    floor[:, joints] -= 18.0
    return frozen(np.clip(floor, 0, 255).astype(np.uint8))
