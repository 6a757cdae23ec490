"""Grey textures for the simulated world, generated once from OpenCV and a shipped photo.

Each texture is a `Texture`: a mip pyramid of grey images (level 0 = full resolution, each
next level half the size) and, for cut-out shapes, a matching alpha pyramid (255 = opaque).
Nothing is downloaded: tags come from OpenCV's aruco dictionary, the person from a public-domain
astronaut photo shipped in `sim/assets/` (see its README), the rest is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
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


def _frozen(image: np.ndarray) -> np.ndarray:
    """Shared by every render (and thread): make accidental writes fail loudly."""
    image.flags.writeable = False
    return image


def _pyramid(image: np.ndarray, min_side: int = 8) -> tuple[np.ndarray, ...]:
    levels = [np.ascontiguousarray(image)]
    while min(levels[-1].shape[:2]) >= 2 * min_side:
        levels.append(cv2.pyrDown(levels[-1]))
    return tuple(_frozen(level) for level in levels)


def _texture(grey: np.ndarray, alpha: np.ndarray | None = None) -> Texture:
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
    return _texture(board)


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
    return _texture(grey, alpha)


# --- Person --------------------------------------------------------------------------------------

# Outline of the astronaut in the 512 x 512 photo `sim/assets/astronaut_grey.png`: head ellipse and body
# polygon (traced by hand, so the cut-out is the same on every run).
_HEAD_ELLIPSE = ((226, 100), (73, 88))
_BODY_POLYGON = [
    (168, 176), (140, 180), (120, 192), (112, 215), (112, 248), (60, 268), (38, 295), (27, 350),
    (20, 440), (22, 511), (362, 511), (362, 400), (356, 330), (345, 292), (318, 272), (304, 262),
    (306, 225), (296, 195), (280, 180),
]
_HELMET_BOX = (330, 268, 371)  # first row, first and last+1 column of the helmet (photo's lower right)
_BODY_AXIS_X = 190  # her body's vertical symmetry axis (photo column)
_PHOTO_TOP, _PHOTO_LEFT, _PHOTO_RIGHT = 12, 15, 371  # crop of the photo used (rows from the head top)
_PHOTO_HEIGHT_FRACTION = 0.38  # head top to the photo's lower edge (about the waist) of a whole person
PERSON_TEXTURE_SCALE = 0.5  # store at half the photo's resolution: plenty for a 640 x 480 camera


@lru_cache(maxsize=1)
def person_texture() -> Texture:
    """Whole standing person: the astronaut photo (head to waist) cut out, with drawn arms and legs."""
    return _build_person()


def _build_person(trousers: float = 70.0, forearms: bool = True, gain: float = 1.0) -> Texture:
    photo = cv2.imread(str(ASSETS_DIR / "astronaut_grey.png"), cv2.IMREAD_UNCHANGED)
    if photo is None or photo.shape != (512, 512):
        raise FileNotFoundError(f"{ASSETS_DIR / 'astronaut_grey.png'}: missing or damaged sim asset")
    # She holds a helmet at her left hip (lower right of the photo): replace it by the mirror
    # image of her other side so the silhouette is a person's, not a person plus a black ball.
    row0, col0, col1 = _HELMET_BOX
    photo[row0:, col0:col1] = photo[row0:, 2 * _BODY_AXIS_X - col1 + 1 : 2 * _BODY_AXIS_X - col0 + 1][:, ::-1]
    mask = np.zeros(photo.shape, np.uint8)
    cv2.ellipse(mask, _HEAD_ELLIPSE[0], _HEAD_ELLIPSE[1], 0, 0, 360, 255, -1, cv2.LINE_AA)
    cv2.fillPoly(mask, [np.array(_BODY_POLYGON, np.int32)], 255, cv2.LINE_AA)
    photo = photo[_PHOTO_TOP:, _PHOTO_LEFT:_PHOTO_RIGHT]
    mask = mask[_PHOTO_TOP:, _PHOTO_LEFT:_PHOTO_RIGHT]
    photo_h, width = photo.shape
    total_h = int(round(photo_h / _PHOTO_HEIGHT_FRACTION))
    grey = np.zeros((total_h, width), np.uint8)
    alpha = np.zeros((total_h, width), np.uint8)
    grey[:photo_h] = photo
    alpha[:photo_h] = mask

    # Lower body drawn below the photo's lower edge: forearms and hands hanging beside the hips,
    # dark trousers, black shoes, each shaded like a cylinder lit from the front so it reads
    # as a solid body rather than a flat cut-out.
    suit = int(np.median(photo[photo_h - 120 : photo_h - 20, 100:200]))
    h = total_h - photo_h
    lower = np.zeros((h, width), np.float32)
    lower_alpha = np.zeros((h, width), np.uint8)
    px = total_h / 1.75  # pixels per metre, drawn for a 1.75 m person (other heights scale it all)
    cx = width * 0.52
    crotch = 0.29 * px  # below the photo's edge (the photo ends at about the waist)
    ankle = h - 0.08 * px
    skin, shoes = 165.0, 30.0

    Point = tuple[float, float]

    def quad(tl: Point, tr: Point, br: Point, bl: Point, grey_level: float) -> None:
        """Fill a quad (top and bottom edges horizontal) with cylindrical shading across it."""
        top, bottom = int(round(tl[1])), int(round(bl[1]))
        rows = np.arange(top, bottom + 1, dtype=np.float32)
        frac = (rows - tl[1]) / max(bl[1] - tl[1], 1.0)
        left = tl[0] + frac * (bl[0] - tl[0])
        right = tr[0] + frac * (br[0] - tr[0])
        cols = np.arange(width, dtype=np.float32)[None, :]
        across = (cols - left[:, None]) / np.maximum(right - left, 1.0)[:, None]
        inside = (across >= 0.0) & (across <= 1.0)
        bulge = np.maximum(np.sin(np.pi * np.clip(across, 0.0, 1.0)), 0.0) ** 0.6
        shade = grey_level * (0.55 + 0.45 * bulge)
        region = lower[top : bottom + 1]
        region[inside] = shade[inside]
        lower_alpha[top : bottom + 1][inside] = 255

    # Forearms in the suit, then hands (the photo cuts the arms at the wrist).
    for x0, x1 in ((12.0, 68.0), (296.0, 350.0)) if forearms else ():
        quad((x0, 0), (x1, 0), (x1 - 4, 0.22 * px), (x0 + 4, 0.22 * px), suit)
        quad((x0 + 6, 0.2 * px), (x1 - 6, 0.2 * px), (x1 - 12, 0.3 * px), (x0 + 12, 0.3 * px), skin)
    # Hips, then two legs tapering to the ankles with a gap widening towards the feet.
    hip_half = 0.175 * px
    quad((70.0, 0), (300.0, 0), (cx + hip_half, crotch + 2), (cx - hip_half, crotch + 2), trousers)
    for side in (-1.0, 1.0):
        inner_top, outer_top = cx + side * 0.005 * px, cx + side * hip_half
        inner_bot = cx + side * 0.035 * px
        outer_bot = inner_bot + side * 0.11 * px
        xs = sorted((inner_top, outer_top)), sorted((inner_bot, outer_bot))
        quad((xs[0][0], crotch), (xs[0][1], crotch), (xs[1][1], ankle), (xs[1][0], ankle), trousers)
        shoe_l, shoe_r = min(inner_bot, outer_bot) - 0.01 * px, max(inner_bot, outer_bot) + 0.01 * px
        quad((shoe_l, ankle), (shoe_r, ankle), (shoe_r + 0.01 * px, h - 1), (shoe_l - 0.01 * px, h - 1), shoes)
    # A belt where the photo ends, and some fabric grain.
    belt = lower_alpha[: int(0.04 * px)] > 0
    lower[: int(0.04 * px)][belt] *= np.float32(0.5)
    rng = np.random.default_rng(3)
    lower += cv2.GaussianBlur(np.asarray(rng.normal(0.0, 5.0, size=lower.shape), np.float32), (5, 5), 1.5)
    lower = np.clip(lower, 0, 255).astype(np.uint8)
    grey[photo_h:] = lower
    alpha[photo_h:] = lower_alpha
    grey[alpha == 0] = suit  # colour under transparent texels: keeps edge interpolation clean

    size = (int(round(width * PERSON_TEXTURE_SCALE)), int(round(total_h * PERSON_TEXTURE_SCALE)))
    grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    return _texture(grey, alpha)


@lru_cache(maxsize=1)
def shadow_texture() -> Texture:
    """A soft dark blob for the floor under a person's feet (alpha at most about half)."""
    size = 64
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    r2 = ((xs - (size - 1) / 2) / (size / 2)) ** 2 + ((ys - (size - 1) / 2) / (size / 2)) ** 2
    alpha = np.clip(120.0 * np.exp(-3.0 * r2) * (r2 < 1.0), 0, 255).astype(np.uint8)  # < 128: no depth
    return _texture(np.full((size, size), 40, np.uint8), alpha)


def person_aspect() -> float:
    """Width / height of the person texture."""
    tex = person_texture()
    return tex.width / tex.height


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
    return _frozen(np.clip(floor, 0, 255).astype(np.uint8))


# Extent (metres) each floor mip level is pre-tiled to, so the floor seen in that level's distance
# band maps inside the image and warpPerspective never needs its (slow) wrap-around path.
FLOOR_LEVEL_EXTENT_M = (12.0, 16.0, 24.0, 32.0, 48.0)


@lru_cache(maxsize=1)
def floor_pyramid() -> tuple[np.ndarray, ...]:
    """Mip levels of the floor, level L at FLOOR_PX_PER_M / 2**L, tiled to FLOOR_LEVEL_EXTENT_M[L]."""
    pattern = floor_texture()
    pad = 8
    levels = []
    for extent in FLOOR_LEVEL_EXTENT_M:
        repeats = int(round(extent / FLOOR_TILE_M))
        levels.append(_frozen(np.ascontiguousarray(np.tile(pattern, (repeats, repeats)))))
        padded = np.pad(pattern, pad, mode="wrap")  # blur with wrap-around: each level stays seamless
        pattern = cv2.pyrDown(padded)[pad // 2 : -pad // 2, pad // 2 : -pad // 2].copy()
    return tuple(levels)


@lru_cache(maxsize=1)
def floor_mean_grey() -> int:
    """What the floor looks like from far away."""
    return int(round(float(floor_texture().mean())))
