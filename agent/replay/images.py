"""Image bytes from replay inputs -> pixels, refusing what must not be decoded.

Folders hold any image file; recordings hold the robot's JPEGs (which replay must decode the
way the live agent did, reduced or not: `decode_recorded_jpeg`) and lossless PNGs. Every image
is checked by its header before decoding (`image_problem`), so a huge or non-image file is
reported instead of exhausting memory.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from perception.decode import JPEG_REDUCTIONS, FrameDecodeError, check_pixels, decode_jpeg_reduced
from perception.image_size import image_header_size

ImageDecoder = Callable[[bytes], "np.ndarray | None"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
JPEG_MAGIC = b"\xff\xd8\xff"

# Decoded pixels allowed per image in replay: 4096 x 4096 is 48 MB as BGR, and replay holds a few
# frames ahead per detector, so it is stricter than the agent's own `MAX_IMAGE_PIXELS` (50 MP).
# The size is read from the header, before any decoding, by perception's one header reader.
MAX_IMAGE_PIXELS = 4096 * 4096


def image_problem(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> str | None:
    """Why these image bytes must not be decoded (empty, unreadable header, too large), or None."""
    if not data:
        return "empty file"
    size = image_header_size(data)
    if size is None:
        return "not a decodable image (no readable PNG/JPEG/BMP/WebP/GIF/TIFF/PNM header)"
    try:
        check_pixels(*size, max_pixels=max_pixels)
    except FrameDecodeError as exc:
        return f"too large: {exc.detail}; not decoded"
    return None


def _imdecode(data: bytes, flag: int) -> np.ndarray | None:
    """cv2.imdecode that never raises (empty or damaged input -> None)."""
    if not data:
        return None
    try:
        return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    except cv2.error:
        return None


def decode_image(data: bytes) -> np.ndarray | None:
    """JPEG / PNG bytes -> grey (H x W) or BGR (H x W x 3) uint8 as stored; None if unusable.

    Images whose header is unreadable or too large (`image_problem`) are not decoded at all."""
    if image_problem(data) is not None:
        return None
    image = _imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint8:
        return None
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] != 3:
        return None
    return image


def decode_recorded_jpeg(data: bytes, channels: int, image_scale: float) -> np.ndarray | None:
    """A recorded JPEG decoded the way the live agent decoded it: same channels, same reduction.

    The live source may decode a large JPEG reduced (`Frame.image_scale` < 1); replay must give
    the detector the very same pixels, so it decodes with perception's own JPEG decode (one
    table of OpenCV flags for both). None when the bytes do not decode.
    """
    factor = max(1, round(1.0 / image_scale)) if image_scale > 0 else 1
    grey = channels == 1
    if channels not in (1, 3) or (grey, factor) not in JPEG_REDUCTIONS:
        return decode_image(data)
    try:
        image = decode_jpeg_reduced(data, grey, factor, MAX_IMAGE_PIXELS * factor * factor)
    except FrameDecodeError:
        return None
    return image if image.dtype == np.uint8 else None
