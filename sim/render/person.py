"""The person texture: a public-domain astronaut photo (head to waist) cut out, with the lower
body drawn below it.

Its own module because it is the one texture built from a shipped photo (`sim/assets/`, see its
README) rather than drawn, with hand-traced outlines: the cut-out is the same on every run and
nothing is downloaded. The drawn arms, trousers and shoes are shaded like cylinders lit from the
front, so the whole figure reads as a solid standing person to a COCO detector.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from sim.render.textures import Texture, make_texture

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
PHOTO = ASSETS_DIR / "astronaut_grey.png"

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
TROUSERS_GREY, SKIN_GREY, SHOES_GREY = 70.0, 165.0, 30.0

Point = tuple[float, float]


@lru_cache(maxsize=1)
def person_texture() -> Texture:
    """Whole standing person: the astronaut photo (head to waist) cut out, with drawn arms and legs."""
    photo, mask = _photo_cut_out()
    photo_h, width = photo.shape
    total_h = int(round(photo_h / _PHOTO_HEIGHT_FRACTION))
    grey = np.zeros((total_h, width), np.uint8)
    alpha = np.zeros((total_h, width), np.uint8)
    grey[:photo_h] = photo
    alpha[:photo_h] = mask
    suit = int(np.median(photo[photo_h - 120 : photo_h - 20, 100:200]))
    grey[photo_h:], alpha[photo_h:] = _LowerBody(total_h - photo_h, width, total_h / 1.75, suit).draw()
    grey[alpha == 0] = suit  # colour under transparent texels: keeps edge interpolation clean

    size = (int(round(width * PERSON_TEXTURE_SCALE)), int(round(total_h * PERSON_TEXTURE_SCALE)))
    grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    return make_texture(grey, alpha)


def person_aspect() -> float:
    """Width / height of the person texture."""
    tex = person_texture()
    return tex.width / tex.height


def _photo_cut_out() -> tuple[np.ndarray, np.ndarray]:
    """(the cropped photo, its cut-out mask): head to waist, without the helmet she holds."""
    photo = cv2.imread(str(PHOTO), cv2.IMREAD_UNCHANGED)
    if photo is None or photo.shape != (512, 512):
        raise FileNotFoundError(f"{PHOTO}: missing or damaged sim asset")
    # She holds a helmet at her left hip (lower right of the photo): replace it by the mirror
    # image of her other side so the silhouette is a person's, not a person plus a black ball.
    row0, col0, col1 = _HELMET_BOX
    photo[row0:, col0:col1] = photo[row0:, 2 * _BODY_AXIS_X - col1 + 1 : 2 * _BODY_AXIS_X - col0 + 1][:, ::-1]
    mask = np.zeros(photo.shape, np.uint8)
    cv2.ellipse(mask, _HEAD_ELLIPSE[0], _HEAD_ELLIPSE[1], 0, 0, 360, 255, -1, cv2.LINE_AA)
    cv2.fillPoly(mask, [np.array(_BODY_POLYGON, np.int32)], 255, cv2.LINE_AA)
    return photo[_PHOTO_TOP:, _PHOTO_LEFT:_PHOTO_RIGHT], mask[_PHOTO_TOP:, _PHOTO_LEFT:_PHOTO_RIGHT]


class _LowerBody:
    """Drawn below the photo's lower edge: forearms and hands hanging beside the hips, dark
    trousers, black shoes, each shaded like a cylinder lit from the front so it reads as a solid
    body rather than a flat cut-out."""

    def __init__(self, h: int, width: int, px_per_m: float, suit: int) -> None:
        self.h, self.width, self.px, self.suit = h, width, px_per_m, suit
        self.grey = np.zeros((h, width), np.float32)
        self.alpha = np.zeros((h, width), np.uint8)

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """(grey, alpha) of the lower body; `px` is pixels per metre of a 1.75 m person."""
        px, h = self.px, self.h
        cx = self.width * 0.52
        crotch = 0.29 * px  # below the photo's edge (the photo ends at about the waist)
        ankle = h - 0.08 * px
        # Forearms in the suit, then hands (the photo cuts the arms at the wrist).
        for x0, x1 in ((12.0, 68.0), (296.0, 350.0)):
            self._quad((x0, 0), (x1, 0), (x1 - 4, 0.22 * px), (x0 + 4, 0.22 * px), self.suit)
            self._quad((x0 + 6, 0.2 * px), (x1 - 6, 0.2 * px), (x1 - 12, 0.3 * px), (x0 + 12, 0.3 * px), SKIN_GREY)
        # Hips, then two legs tapering to the ankles with a gap widening towards the feet.
        hip_half = 0.175 * px
        self._quad((70.0, 0), (300.0, 0), (cx + hip_half, crotch + 2), (cx - hip_half, crotch + 2), TROUSERS_GREY)
        for side in (-1.0, 1.0):
            inner_top, outer_top = cx + side * 0.005 * px, cx + side * hip_half
            inner_bot = cx + side * 0.035 * px
            outer_bot = inner_bot + side * 0.11 * px
            xs = sorted((inner_top, outer_top)), sorted((inner_bot, outer_bot))
            self._quad((xs[0][0], crotch), (xs[0][1], crotch), (xs[1][1], ankle), (xs[1][0], ankle), TROUSERS_GREY)
            shoe_l, shoe_r = min(inner_bot, outer_bot) - 0.01 * px, max(inner_bot, outer_bot) + 0.01 * px
            self._quad(
                (shoe_l, ankle), (shoe_r, ankle), (shoe_r + 0.01 * px, h - 1), (shoe_l - 0.01 * px, h - 1), SHOES_GREY
            )
        # A belt where the photo ends, and some fabric grain.
        lower = self.grey
        belt = self.alpha[: int(0.04 * px)] > 0
        lower[: int(0.04 * px)][belt] *= np.float32(0.5)
        rng = np.random.default_rng(3)
        lower += cv2.GaussianBlur(np.asarray(rng.normal(0.0, 5.0, size=lower.shape), np.float32), (5, 5), 1.5)
        return np.clip(lower, 0, 255).astype(np.uint8), self.alpha

    def _quad(self, tl: Point, tr: Point, br: Point, bl: Point, grey_level: float) -> None:
        """Fill a quad (top and bottom edges horizontal) with cylindrical shading across it."""
        top, bottom = int(round(tl[1])), int(round(bl[1]))
        rows = np.arange(top, bottom + 1, dtype=np.float32)
        frac = (rows - tl[1]) / max(bl[1] - tl[1], 1.0)
        left = tl[0] + frac * (bl[0] - tl[0])
        right = tr[0] + frac * (br[0] - tr[0])
        cols = np.arange(self.width, dtype=np.float32)[None, :]
        across = (cols - left[:, None]) / np.maximum(right - left, 1.0)[:, None]
        inside = (across >= 0.0) & (across <= 1.0)
        bulge = np.maximum(np.sin(np.pi * np.clip(across, 0.0, 1.0)), 0.0) ** 0.6
        shade = grey_level * (0.55 + 0.45 * bulge)
        region = self.grey[top : bottom + 1]
        region[inside] = shade[inside]
        self.alpha[top : bottom + 1][inside] = 255
