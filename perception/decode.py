"""`bosdyn.api.ImageResponse` -> `Frame`, and a counter for the frames that could not be.

Handles JPEG and RAW grey U8 / RGB U8 / RGBA U8, and RAW DEPTH_U16 (metres = value /
`source.depth_scale`, 0 = no return -> NaN). Keeps the camera name, the acquisition time on the
robot clock and on this machine's clock, the pinhole intrinsics and the transforms snapshot.

Bad data never raises anything but `FrameDecodeError(reason)`: truncated or corrupt JPEG, RAW
size mismatch, unsupported formats, non-OK status, too many pixels. `DropCounter` counts and logs
those reasons.

Every image that comes from outside (robot ImageResponses, `spot-agent detect` inputs, replayed
folders and videos) is bounded by `MAX_IMAGE_PIXELS` *before* it is decoded: `decode_bounded`
(encoded bytes -> image) reads the size from the header (`image_header_size`) and refuses an
image over the limit with `FrameDecodeError("too_large")`; `check_pixels` is the same check for
sizes known otherwise (a video's frame size, a RAW image's rows and columns).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from bosdyn.api import image_pb2

from perception.frame import Frame, PinholeIntrinsics
from perception.image_size import MAX_IMAGE_PIXELS, image_header_size

__all__ = [
    "JPEG_REDUCTIONS",
    "MAX_IMAGE_PIXELS",
    "DropCounter",
    "FrameDecodeError",
    "RobotToLocal",
    "check_pixels",
    "decode_bounded",
    "decode_image_response",
    "decode_jpeg_reduced",
    "image_header_size",
    "is_complete_jpeg",
]

log = logging.getLogger(__name__)

# A robot-clock time (s) converted to this machine's clock, through time sync.
RobotToLocal = Callable[[float], float]

_Image = image_pb2.Image
_RAW_CHANNELS = {
    _Image.PIXEL_FORMAT_GREYSCALE_U8: 1,
    _Image.PIXEL_FORMAT_RGB_U8: 3,
    _Image.PIXEL_FORMAT_RGBA_U8: 4,
}
# (grey, factor) -> the OpenCV flag: IMREAD_REDUCED_* decode a JPEG straight at 1/2, 1/4, 1/8
# size (DCT scaling: far cheaper). The one table: replay decodes recorded JPEGs with it too.
JPEG_REDUCTIONS = {
    (True, 1): cv2.IMREAD_GRAYSCALE,
    (True, 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    (True, 4): cv2.IMREAD_REDUCED_GRAYSCALE_4,
    (True, 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
    (False, 1): cv2.IMREAD_COLOR,
    (False, 2): cv2.IMREAD_REDUCED_COLOR_2,
    (False, 4): cv2.IMREAD_REDUCED_COLOR_4,
    (False, 8): cv2.IMREAD_REDUCED_COLOR_8,
}


class FrameDecodeError(ValueError):
    """An ImageResponse that cannot become a Frame. `reason` is a short key for counting."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def check_pixels(width: int, height: int, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Raise `FrameDecodeError("too_large", "WxH > limit")` for an image over `max_pixels`."""
    if width * height > max_pixels:
        raise FrameDecodeError(
            "too_large", f"{width}x{height} pixels > the limit of {max_pixels} ({max_pixels / 1e6:g} MP)"
        )


def decode_bounded(
    data: bytes, flags: int = cv2.IMREAD_COLOR, max_pixels: int = MAX_IMAGE_PIXELS
) -> np.ndarray:
    """`cv2.imdecode(data, flags)` for bytes from outside, with the size checked first.

    JPEG, PNG, BMP, WebP, GIF, TIFF and PNM/PFM are accepted. Raises `FrameDecodeError` with
    reason `empty_data`, `unknown_format` (no size could be read from the header, so the image
    is not decoded), `too_large`, `truncated_jpeg` or `decode_error`; never anything else.
    """
    if not data:
        raise FrameDecodeError("empty_data", "0 bytes")
    size = image_header_size(data)
    if size is None:
        raise FrameDecodeError(
            "unknown_format", "not a JPEG, PNG, BMP, WebP, GIF, TIFF or PNM image with a readable size"
        )
    check_pixels(*size, max_pixels=max_pixels)
    if data[:2] == b"\xff\xd8" and not is_complete_jpeg(data):
        raise FrameDecodeError("truncated_jpeg", f"{len(data)} bytes, no EOI marker")
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as exc:
        raise FrameDecodeError("decode_error", str(exc).strip().splitlines()[-1]) from None
    if image is None:
        raise FrameDecodeError("decode_error", f"{len(data)} bytes of {size[0]}x{size[1]} not decodable")
    return image


def decode_jpeg_reduced(
    data: bytes, grey: bool, factor: int, max_pixels: int = MAX_IMAGE_PIXELS
) -> np.ndarray:
    """A JPEG decoded grey or BGR at 1/`factor` size (a factor in `JPEG_REDUCTIONS`: 1, 2, 4, 8),
    checked as `decode_bounded` does (`max_pixels` applies to the full size in the header).

    The robot's frames are decoded with it, and replay decodes their recorded bytes with it
    again: the detector sees the same pixels live and in replay.
    """
    return decode_bounded(data, JPEG_REDUCTIONS[(grey, factor)], max_pixels)


def _enum_name(enum: Any, value: int) -> str:
    try:
        return str(enum.Name(value))
    except ValueError:
        return str(value)


def robot_seconds(timestamp: Any) -> float:
    """A google.protobuf.Timestamp as float seconds."""
    return float(timestamp.seconds) + float(timestamp.nanos) * 1e-9


def intrinsics_from_source(source: image_pb2.ImageSource) -> PinholeIntrinsics | None:
    if not source.HasField("pinhole"):
        return None
    k = source.pinhole.intrinsics
    if k.focal_length.x <= 0 or k.focal_length.y <= 0:
        return None
    return PinholeIntrinsics(
        fx=k.focal_length.x, fy=k.focal_length.y, cx=k.principal_point.x, cy=k.principal_point.y
    )


def decode_image_response(
    resp: image_pb2.ImageResponse,
    robot_to_local: RobotToLocal | None = None,
    *,
    seq: int = 0,
    min_side: int | None = None,
) -> Frame:
    """Decode one ImageResponse.

    `robot_to_local` converts robot-clock seconds to local seconds (built from the time-sync
    clock skew); None means the clocks are equal. `min_side`: decode a JPEG reduced (1/2, 1/4,
    1/8) as long as its shorter side stays >= `min_side` pixels, i.e. at the size a detector
    needs; the frame's `image_scale` then says so and intrinsics stay those of the full image.
    """
    if resp.status != image_pb2.ImageResponse.STATUS_OK:
        raise FrameDecodeError("status_not_ok", _enum_name(image_pb2.ImageResponse.Status, resp.status))
    shot = resp.shot
    img = shot.image
    camera = resp.source.name
    if not img.data:
        raise FrameDecodeError("empty_data", camera)
    try:
        if img.format == _Image.FORMAT_JPEG:
            image, scale = _decode_jpeg(img, min_side)
            encoded: bytes | None = img.data
            is_depth = False
        elif img.format == _Image.FORMAT_RAW:
            encoded, scale = None, 1.0
            if img.pixel_format == _Image.PIXEL_FORMAT_DEPTH_U16:
                image, is_depth = _decode_depth(img, resp.source.depth_scale), True
            else:
                image, is_depth = _decode_raw(img), False
        else:
            raise FrameDecodeError("unsupported_format", _enum_name(_Image.Format, img.format))
    except FrameDecodeError:
        raise
    except (cv2.error, ValueError) as exc:  # anything else the decoders choke on
        raise FrameDecodeError("decode_error", str(exc)) from exc
    t_robot = robot_seconds(shot.acquisition_time)
    t_local = robot_to_local(t_robot) if robot_to_local is not None else t_robot
    snapshot = shot.transforms_snapshot if shot.HasField("transforms_snapshot") else None
    return Frame(
        camera=camera,
        image=image,
        acquisition_time_robot=t_robot,
        acquisition_time_local=t_local,
        intrinsics=intrinsics_from_source(resp.source),
        frame_name_image_sensor=shot.frame_name_image_sensor,
        transforms_snapshot=snapshot,
        encoded=encoded,
        is_depth=is_depth,
        seq=seq,
        image_scale=scale,
    )


def is_complete_jpeg(data: bytes) -> bool:
    """A JPEG starts with SOI (FF D8) and ends with EOI (FF D9), maybe followed by padding.

    libjpeg "decodes" a truncated stream by filling the rest with grey and only warns, so the
    end marker is the check that catches truncation.
    """
    if data[:2] != b"\xff\xd8":
        return False
    tail = data[-64:].rstrip(b"\x00")
    return tail.endswith(b"\xff\xd9")


def _decode_jpeg(img: image_pb2.Image, min_side: int | None) -> tuple[np.ndarray, float]:
    data = img.data
    if not is_complete_jpeg(data):
        raise FrameDecodeError("truncated_jpeg", f"{len(data)} bytes, no SOI/EOI marker")
    if img.rows and img.cols:  # what the robot claims; the JPEG's own header is checked next
        check_pixels(img.cols, img.rows)
    grey = img.pixel_format == _Image.PIXEL_FORMAT_GREYSCALE_U8
    colour = img.pixel_format in (_Image.PIXEL_FORMAT_RGB_U8, _Image.PIXEL_FORMAT_RGBA_U8)
    factor = _reduction(img.rows, img.cols, min_side) if (grey or colour) else 1
    try:
        if grey or colour:
            image = decode_jpeg_reduced(data, grey, factor)
        else:  # a pixel format the robot did not say: as the JPEG itself is
            image = decode_bounded(data, cv2.IMREAD_UNCHANGED)
    except FrameDecodeError as exc:
        if exc.reason == "decode_error":
            raise FrameDecodeError("corrupt_jpeg", f"{len(data)} bytes not decodable") from None
        if exc.reason == "unknown_format":
            raise FrameDecodeError("corrupt_jpeg", f"{len(data)} bytes, no frame header") from None
        raise
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if img.rows and img.cols:
        want = (-(-img.rows // factor), -(-img.cols // factor))
        if image.shape[:2] != want:
            raise FrameDecodeError(
                "size_mismatch", f"JPEG is {image.shape[1]}x{image.shape[0]}, header says {img.cols}x{img.rows}"
            )
    return image, 1.0 / factor


def _reduction(rows: int, cols: int, min_side: int | None) -> int:
    if not min_side or not rows or not cols:
        return 1
    for factor in (8, 4, 2):
        if min(rows, cols) // factor >= min_side:
            return factor
    return 1


def _decode_raw(img: image_pb2.Image) -> np.ndarray:
    channels = _RAW_CHANNELS.get(img.pixel_format)
    if channels is None:
        raise FrameDecodeError("unsupported_pixel_format", _enum_name(_Image.PixelFormat, img.pixel_format))
    check_pixels(img.cols, img.rows)
    expected = img.rows * img.cols * channels
    if not img.rows or not img.cols or len(img.data) != expected:
        raise FrameDecodeError(
            "raw_size_mismatch", f"{len(img.data)} bytes for {img.cols}x{img.rows}x{channels}"
        )
    pixels = np.frombuffer(img.data, np.uint8)
    if channels == 1:
        # A copy: a view would be read-only (and pin the proto's bytes) wherever the frame goes.
        return pixels.reshape(img.rows, img.cols).copy()
    pixels = pixels.reshape(img.rows, img.cols, channels)
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR if channels == 3 else cv2.COLOR_RGBA2BGR)


def _decode_depth(img: image_pb2.Image, depth_scale: float) -> np.ndarray:
    if not depth_scale or depth_scale <= 0:
        raise FrameDecodeError("missing_depth_scale", "source.depth_scale is not set")
    check_pixels(img.cols, img.rows)
    if not img.rows or not img.cols or len(img.data) != img.rows * img.cols * 2:
        raise FrameDecodeError("raw_size_mismatch", f"{len(img.data)} bytes for {img.cols}x{img.rows} u16")
    raw = np.frombuffer(img.data, dtype="<u2").reshape(img.rows, img.cols)
    metres = raw.astype(np.float32) / np.float32(depth_scale)
    metres[raw == 0] = np.nan  # 0 = no depth return
    return metres


@dataclass(frozen=True)
class DropStats:
    total: int
    by_reason: dict[str, int]
    by_camera: dict[str, int]


class DropCounter:
    """Counts frames dropped at decode, by reason and camera, and logs them without flooding.

    The first drop of each reason is logged at WARNING; later ones at most every
    `log_interval_s` per reason, with the running count. Thread-safe.
    """

    def __init__(self, logger: logging.Logger | None = None, log_interval_s: float = 10.0) -> None:
        self._log = logger or log
        self._interval = log_interval_s
        self._lock = threading.Lock()
        self._by_reason: dict[str, int] = {}
        self._by_camera: dict[str, int] = {}
        self._last_log: dict[str, float] = {}

    def record(self, camera: str, error: FrameDecodeError) -> None:
        now = time.monotonic()
        with self._lock:
            n = self._by_reason.get(error.reason, 0) + 1
            self._by_reason[error.reason] = n
            self._by_camera[camera] = self._by_camera.get(camera, 0) + 1
            last = self._last_log.get(error.reason)
            should_log = last is None or now - last >= self._interval
            if should_log:
                self._last_log[error.reason] = now
        if should_log:
            self._log.warning("dropped frame from %s: %s (%d so far for this reason)", camera or "?", error, n)

    def decode(
        self,
        resp: image_pb2.ImageResponse,
        robot_to_local: RobotToLocal | None = None,
        **kwargs: Any,
    ) -> Frame | None:
        """`decode_image_response`, or None (counted and logged) when the frame is bad."""
        try:
            return decode_image_response(resp, robot_to_local, **kwargs)
        except FrameDecodeError as exc:
            self.record(resp.source.name, exc)
            return None

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._by_reason.values())

    def stats(self) -> DropStats:
        with self._lock:
            return DropStats(sum(self._by_reason.values()), dict(self._by_reason), dict(self._by_camera))
