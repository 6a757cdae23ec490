"""ImageResponse -> Frame: every format Spot sends, clocks, intrinsics, and bad data."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from bosdyn.api import image_pb2
from fixtures.image_bombs import jpeg_header_claiming, zero_png
from fixtures.perception_support import image_response, jpeg_response, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage import data

from perception.decode import (
    MAX_IMAGE_PIXELS,
    DropCounter,
    FrameDecodeError,
    decode_bounded,
    decode_image_response,
    image_header_size,
)

Image = image_pb2.Image


@pytest.fixture(scope="module")
def grey() -> np.ndarray:
    return cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY), (640, 480))


def test_grey_jpeg_keeps_camera_clock_intrinsics_and_snapshot(grey: np.ndarray) -> None:
    snap = snapshot()
    resp = jpeg_response(grey, acquisition_s=1000.25, snapshot=snap)
    frame = decode_image_response(resp, robot_to_local=lambda t: t - 3.5, seq=7)
    assert frame.camera == "frontleft_fisheye_image"
    assert frame.image.shape == (480, 640) and frame.image.dtype == np.uint8
    assert np.abs(frame.image.astype(int) - grey).mean() < 3  # JPEG-close to the original
    assert frame.acquisition_time_robot == pytest.approx(1000.25)
    assert frame.acquisition_time_local == pytest.approx(996.75)
    assert (frame.intrinsics.fx, frame.intrinsics.fy, frame.intrinsics.cx, frame.intrinsics.cy) == (
        330.0, 331.0, 320.5, 240.5,
    )
    assert frame.frame_name_image_sensor == "frontleft_fisheye"
    assert frame.transforms_snapshot == snap
    assert frame.encoded == resp.shot.image.data  # what the robot sent, for recordings
    assert frame.seq == 7 and not frame.is_depth and frame.image_scale == 1.0


def test_clocks_are_equal_without_time_sync(grey: np.ndarray) -> None:
    frame = decode_image_response(jpeg_response(grey, acquisition_s=12.5))
    assert frame.acquisition_time_local == frame.acquisition_time_robot == pytest.approx(12.5)


def test_colour_jpeg_becomes_bgr() -> None:
    bgr = np.zeros((60, 80, 3), np.uint8)
    bgr[:, :, 2] = 200  # red
    frame = decode_image_response(jpeg_response(bgr))
    assert frame.image.shape == (60, 80, 3)
    b, g, r = frame.image[30, 40]
    assert r > 180 and b < 30 and g < 30


def test_large_jpeg_is_decoded_reduced_to_what_the_detector_needs() -> None:
    big = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (1920, 1080))
    frame = decode_image_response(jpeg_response(big, intrinsics=(1000.0, 1000.0, 960.0, 540.0)), min_side=416)
    assert frame.image.shape == (540, 960, 3)  # 1/2: 1/4 would be 270 < 416 rows
    assert frame.image_scale == 0.5
    assert frame.original_size == (1920, 1080)
    assert frame.intrinsics.fx == 1000.0  # intrinsics stay those of the full image
    small = decode_image_response(jpeg_response(big[:480, :640]), min_side=416)
    assert small.image.shape == (480, 640, 3) and small.image_scale == 1.0


def test_raw_grey_u8_is_exact() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (48, 64), dtype=np.uint8)
    resp = image_response(
        pixels.tobytes(), fmt=Image.FORMAT_RAW, pixel_format=Image.PIXEL_FORMAT_GREYSCALE_U8, rows=48, cols=64
    )
    frame = decode_image_response(resp)
    assert np.array_equal(frame.image, pixels) and frame.encoded is None


@pytest.mark.parametrize("pixel_format,channels", [(Image.PIXEL_FORMAT_RGB_U8, 3), (Image.PIXEL_FORMAT_RGBA_U8, 4)])
def test_raw_rgb_and_rgba_become_bgr(pixel_format: int, channels: int) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (30, 40, channels), dtype=np.uint8)
    resp = image_response(rgb.tobytes(), fmt=Image.FORMAT_RAW, pixel_format=pixel_format, rows=30, cols=40)
    frame = decode_image_response(resp)
    assert frame.image.shape == (30, 40, 3)
    assert np.array_equal(frame.image, rgb[:, :, 2::-1])  # BGR, alpha dropped


def test_depth_u16_is_metres_via_depth_scale() -> None:
    raw = np.array([[0, 1000, 2500], [65535, 1, 999]], dtype="<u2")
    resp = image_response(
        raw.tobytes(), fmt=Image.FORMAT_RAW, pixel_format=Image.PIXEL_FORMAT_DEPTH_U16, rows=2, cols=3,
        camera="frontleft_depth_in_visual_frame", depth_scale=1000.0,
    )
    frame = decode_image_response(resp)
    assert frame.is_depth and frame.image.dtype == np.float32
    assert np.isnan(frame.image[0, 0])  # 0 = no return
    assert np.allclose(frame.image[0, 1:], [1.0, 2.5]) and np.allclose(frame.image[1], [65.535, 0.001, 0.999])
    resp.source.depth_scale = 100.0  # another scale: other metres
    assert decode_image_response(resp).image[0, 1] == pytest.approx(10.0)


def _jpeg_bytes(grey: np.ndarray) -> bytes:
    return jpeg_response(grey).shot.image.data


@pytest.mark.parametrize(
    "mutate,reason",
    [
        (lambda r: setattr(r.shot.image, "data", r.shot.image.data[: len(r.shot.image.data) // 2]), "truncated_jpeg"),
        (lambda r: setattr(r.shot.image, "data", b"\xff\xd8" + b"\x00garbage" * 50 + b"\xff\xd9"), "corrupt_jpeg"),
        (lambda r: setattr(r.shot.image, "data", b""), "empty_data"),
        (lambda r: setattr(r.shot.image, "rows", 500), "size_mismatch"),
        (lambda r: setattr(r.shot.image, "format", Image.FORMAT_RLE), "unsupported_format"),
        (lambda r: setattr(r, "status", image_pb2.ImageResponse.STATUS_IMAGE_DATA_ERROR), "status_not_ok"),
    ],
)
def test_bad_jpeg_responses_raise_a_reasoned_error(grey: np.ndarray, mutate, reason: str) -> None:
    resp = jpeg_response(grey)
    mutate(resp)
    with pytest.raises(FrameDecodeError) as err:
        decode_image_response(resp)
    assert err.value.reason == reason


def test_bad_raw_responses_raise_a_reasoned_error() -> None:
    short = image_response(b"\x00" * 10, fmt=Image.FORMAT_RAW, pixel_format=Image.PIXEL_FORMAT_GREYSCALE_U8, rows=4, cols=4)
    with pytest.raises(FrameDecodeError, match="raw_size_mismatch"):
        decode_image_response(short)
    no_scale = image_response(b"\x00" * 32, fmt=Image.FORMAT_RAW, pixel_format=Image.PIXEL_FORMAT_DEPTH_U16, rows=4, cols=4)
    with pytest.raises(FrameDecodeError, match="missing_depth_scale"):
        decode_image_response(no_scale)
    grey16 = image_response(b"\x00" * 32, fmt=Image.FORMAT_RAW, pixel_format=Image.PIXEL_FORMAT_GREYSCALE_U16, rows=4, cols=4)
    with pytest.raises(FrameDecodeError, match="unsupported_pixel_format"):
        decode_image_response(grey16)


def test_drop_counter_counts_logs_and_keeps_going(grey: np.ndarray, caplog: pytest.LogCaptureFixture) -> None:
    counter = DropCounter()
    good = jpeg_response(grey)
    truncated = jpeg_response(grey)
    truncated.shot.image.data = truncated.shot.image.data[:1000]
    with caplog.at_level(logging.WARNING, logger="perception.decode"):
        results = [counter.decode(r) for r in (good, truncated, truncated, good)]
    assert [r is not None for r in results] == [True, False, False, True]
    stats = counter.stats()
    assert stats.total == 2 and stats.by_reason == {"truncated_jpeg": 2}
    assert stats.by_camera == {"frontleft_fisheye_image": 2}
    warnings = [r for r in caplog.records if "dropped frame" in r.getMessage()]
    assert len(warnings) == 1 and "truncated_jpeg" in warnings[0].getMessage()  # rate-limited


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=5000), flips=st.lists(st.integers(0, 10**6), max_size=8))
def test_damaged_jpegs_never_crash(grey: np.ndarray, cut: int, flips: list[int]) -> None:
    data_bytes = bytearray(_jpeg_bytes(grey[:120, :160]))
    for f in flips:
        data_bytes[f % len(data_bytes)] ^= 0x5A
    if cut:
        data_bytes = data_bytes[: max(0, len(data_bytes) - cut)]
    resp = jpeg_response(grey[:120, :160])
    resp.shot.image.data = bytes(data_bytes)
    try:
        frame = decode_image_response(resp)
    except FrameDecodeError as err:
        assert err.reason
    else:
        assert frame.image.shape == (120, 160)


# --- pixel limits before decoding (issue 11) -------------------------------------------------


def _encoded(ext: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, image, params or [])
    assert ok, ext
    return buf.tobytes()


def _formats() -> list[tuple[str, bytes]]:
    colour = np.random.default_rng(1).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    rgba = np.dstack([colour, colour[:, :, 0]])
    return [
        ("jpeg", _encoded(".jpg", colour)),
        ("progressive jpeg", _encoded(".jpg", colour, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])),
        ("png", _encoded(".png", colour)),
        ("png 16-bit", _encoded(".png", colour.astype(np.uint16) * 257)),
        ("bmp", _encoded(".bmp", colour)),
        ("webp lossy", _encoded(".webp", colour, [cv2.IMWRITE_WEBP_QUALITY, 80])),
        ("webp lossless", _encoded(".webp", rgba, [cv2.IMWRITE_WEBP_QUALITY, 101])),
        ("tiff", _encoded(".tiff", colour)),
        ("pgm", _encoded(".pgm", colour[:, :, 0])),
        ("ppm", _encoded(".ppm", colour)),
        ("pfm", _encoded(".pfm", colour.astype(np.float32) / 255)),
        # OpenCV writes (and reads) GIF since 4.11; the header reader handles it either way.
        *([("gif", _encoded(".gif", colour))] if cv2.haveImageWriter(".gif") else []),
    ]


@pytest.mark.parametrize(("kind", "encoded"), _formats(), ids=[k for k, _ in _formats()])
def test_image_header_size_reads_every_format_without_decoding(kind: str, encoded: bytes) -> None:
    assert image_header_size(encoded) == (53, 37)
    assert decode_bounded(encoded, cv2.IMREAD_UNCHANGED).shape[:2] == (37, 53)
    with pytest.raises(FrameDecodeError) as err:
        decode_bounded(encoded, max_pixels=53 * 37 - 1)
    assert err.value.reason == "too_large" and str(err.value) == (
        "too_large: 53x37 pixels > the limit of 1960 (0.00196 MP)")
    for cut in range(len(encoded[:64])):  # a header cut short: no size, never an exception
        size = image_header_size(encoded[:cut])
        assert size in (None, (53, 37))


@settings(max_examples=300, deadline=None)
@given(
    magic=st.sampled_from([b"\xff\xd8", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"BM", b"RIFF\0\0\0\0WEBPVP8",
                           b"GIF89a", b"II*\x00", b"MM\x00*", b"P5\n", b""]),
    tail=st.binary(max_size=200),
)
def test_image_header_size_never_raises(magic: bytes, tail: bytes) -> None:
    size = image_header_size(magic + tail)
    assert size is None or (size[0] > 0 and size[1] > 0)


def test_decode_bounded_refuses_huge_images_before_decoding() -> None:
    for data_bytes, size in [
        (zero_png(40000, 40000), "40000x40000"),  # a real PNG: 1.6 MB, 1.6 GB decoded
        (zero_png(20000, 20000), "20000x20000"),
        (jpeg_header_claiming(65000, 65000), "65000x65000"),
    ]:
        with pytest.raises(FrameDecodeError) as err:
            decode_bounded(data_bytes)
        assert str(err.value) == f"too_large: {size} pixels > the limit of {MAX_IMAGE_PIXELS} (50 MP)"
    assert decode_bounded(zero_png(300, 200), cv2.IMREAD_UNCHANGED).shape == (200, 300)
    for junk, reason in [(b"", "empty_data"), (b"hello world", "unknown_format"),
                         (jpeg_header_claiming(64, 48)[:-2] + b"\0" * 64, "truncated_jpeg"),
                         (jpeg_header_claiming(64, 48), "decode_error")]:
        with pytest.raises(FrameDecodeError) as err:
            decode_bounded(junk)
        assert err.value.reason == reason


def test_robot_images_over_the_pixel_limit_are_dropped_with_a_reason() -> None:
    # A JPEG whose own header claims 65000x65000, whatever the response says.
    resp = image_response(jpeg_header_claiming(65000, 65000), fmt=Image.FORMAT_JPEG,
                          pixel_format=Image.PIXEL_FORMAT_GREYSCALE_U8, rows=480, cols=640)
    with pytest.raises(FrameDecodeError) as err:
        decode_image_response(resp)
    assert err.value.reason == "too_large" and "65000x65000" in str(err.value)
    side = 7072  # 50.01 MP of RAW grey: the data matches its size, but no camera sends that
    raw = image_response(bytes(side * side), fmt=Image.FORMAT_RAW,
                         pixel_format=Image.PIXEL_FORMAT_GREYSCALE_U8, rows=side, cols=side)
    with pytest.raises(FrameDecodeError) as err:
        decode_image_response(raw)
    assert err.value.reason == "too_large"
