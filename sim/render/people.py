"""Person textures by appearance: the astronaut (`sim.render.person`) or a pedestrian cut out of
OpenCV's vtest.avi (`sim/assets/people/*.png`, built by `tools/build_person_sprites.py`).

A sprite PNG is BGRA: the grey photo in B, G, R and the cut-out mask in A, cropped so the top row
is the head and the last row the feet. Sprites are small (about 40 x 110 px): a near person is a
blurry magnification, as a real far-away pedestrian is at the camera's resolution.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from sim.render.person import ASSETS_DIR, person_texture
from sim.render.textures import Texture, make_texture

PEOPLE_DIR = ASSETS_DIR / "people"


@lru_cache(maxsize=16)
def appearance_texture(appearance: str) -> Texture:
    """The whole-body texture (grey + alpha) of one appearance (`sim.scene.PERSON_APPEARANCES`)."""
    if appearance == "astronaut":
        return person_texture()
    path = PEOPLE_DIR / f"{appearance}.png"
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        raise FileNotFoundError(f"{path}: missing or damaged sim asset (BGRA PNG expected)")
    grey = np.ascontiguousarray(image[:, :, 0])
    alpha = np.ascontiguousarray(image[:, :, 3])
    opaque = alpha >= 128
    grey[~opaque] = int(np.median(grey[opaque]))  # colour under transparent texels: clean edges
    return make_texture(grey, alpha)


def appearance_aspect(appearance: str) -> float:
    """Width / height of the appearance's texture."""
    tex = appearance_texture(appearance)
    return tex.width / tex.height
