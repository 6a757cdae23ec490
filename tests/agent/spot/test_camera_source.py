"""`SpotCameraSource` against a stateful fake image service (cameras that take pictures at a rate).

The fake answers `get_image_async` like the robot: with each camera's newest image (so asking
too early returns the same image again), JPEG for visual sources, registered depth alongside.
The gRPC side is covered by the closed-loop tests; this checks pacing, repeats, latest-wins,
lazy decoding, depth pairing and error recovery precisely.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from typing import Any

import cv2
import numpy as np
from bosdyn.api import image_pb2
from bosdyn.client.exceptions import TimedOutError

from agent.spot.camera_source import FramePacer, SpotCameraSource, registered_depth_source
from perception.decode import decode_image_response

CAMERAS = ["frontleft_fisheye_image", "frontright_fisheye_image"]


class FakeImageService:
    """Cameras taking a picture every `1 / rate_hz` s; answers carry the newest picture."""

    def __init__(self, rate_hz: float = 15.0, latency_s: float = 0.002) -> None:
        self.rate_hz = rate_hz
        self.latency_s = latency_s
        self.t0 = time.time()
        self.calls = 0
        self.fail_until = 0.0  # calls before this time time out
        self.lock = threading.Lock()
        _, jpeg = cv2.imencode(".jpg", np.full((48, 64), 128, np.uint8))
        self.jpeg = jpeg.tobytes()

    def list_image_sources_async(self, **_: Any) -> concurrent.futures.Future[Any]:
        sources = []
        for cam in CAMERAS:
            sources.append(image_pb2.ImageSource(name=cam, image_type=image_pb2.ImageSource.IMAGE_TYPE_VISUAL))
            sources.append(image_pb2.ImageSource(name=registered_depth_source(cam), depth_scale=1000.0,
                                                 image_type=image_pb2.ImageSource.IMAGE_TYPE_DEPTH))
        return self._done(sources)

    def _done(self, value: Any, error: BaseException | None = None) -> concurrent.futures.Future[Any]:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        threading.Timer(self.latency_s, lambda: fut.set_exception(error) if error else fut.set_result(value)).start()
        return fut

    def _capture_time(self, now: float) -> float:
        k = int((now - self.t0) * self.rate_hz)
        return self.t0 + k / self.rate_hz

    def get_image_async(self, requests: list[image_pb2.ImageRequest], timeout: float) -> Any:
        now = time.time()
        with self.lock:
            self.calls += 1
        if now < self.fail_until:
            return self._done(None, TimedOutError(None, "timed out"))
        shot_at = self._capture_time(now)
        out = []
        for req in requests:
            resp = image_pb2.ImageResponse(status=image_pb2.ImageResponse.STATUS_OK)
            resp.source.name = req.image_source_name
            resp.shot.acquisition_time.FromNanoseconds(int(shot_at * 1e9))
            img = resp.shot.image
            if req.image_source_name.endswith("_depth_in_visual_frame"):
                scale = req.resize_ratio or 1.0
                rows, cols = int(48 * scale), int(64 * scale)
                resp.source.depth_scale = 1000.0
                img.format, img.pixel_format = image_pb2.Image.FORMAT_RAW, image_pb2.Image.PIXEL_FORMAT_DEPTH_U16
                img.rows, img.cols = rows, cols
                img.data = np.full((rows, cols), 2500, "<u2").tobytes()
            else:
                assert req.image_format == image_pb2.Image.FORMAT_JPEG
                img.format, img.pixel_format = image_pb2.Image.FORMAT_JPEG, image_pb2.Image.PIXEL_FORMAT_GREYSCALE_U8
                img.rows, img.cols, img.data = 48, 64, self.jpeg
            out.append(resp)
        return self._done(out)


def _source(service: FakeImageService, decoded: list[str] | None = None, **kw: Any) -> SpotCameraSource:
    def decode(resp: Any, robot_to_local: Any) -> Any:
        if decoded is not None:
            decoded.append(resp.source.name)
        return decode_image_response(resp, robot_to_local)

    return SpotCameraSource(service, CAMERAS, robot_to_local=lambda t: t, decode=decode, **kw)  # type: ignore[arg-type]


def test_pacer_asks_just_after_the_next_image_is_due() -> None:
    pacer = FramePacer(period_s=0.1, min_interval_s=0.01)
    # Free-running camera: the image was waiting (taken before we asked).
    assert abs(pacer.after_new(asked_at=10.03, captured_at=10.0) - 10.105) < 1e-9
    # On-demand capture (taken 4 ms after we asked): ask 4 ms earlier to arrive on time.
    assert abs(pacer.after_new(asked_at=10.0, captured_at=10.004) - 10.105) < 1e-9
    assert pacer.after_repeat(10.0) == 10.01
    assert pacer.after_new(asked_at=10.0, captured_at=9.5) == 10.01  # never faster than the cap


def test_streams_new_images_only_latest_wins_and_decodes_only_what_is_taken() -> None:
    service = FakeImageService(rate_hz=20.0)
    decoded: list[str] = []

    async def go() -> tuple[list[Any], dict[str, Any], int]:
        source = _source(service, decoded)
        await source.start()
        await asyncio.sleep(1.0)  # nobody takes frames: they are skipped, not queued or decoded
        assert decoded == []
        frames = []
        async for frame in source.frames():
            frames.append(frame)
            if len(frames) == 4:
                break
        stats = source.stats()
        calls = service.calls
        await source.close()
        return frames, stats, calls

    frames, stats, calls = asyncio.run(go())
    for cam in CAMERAS:
        s = stats[cam]
        assert 17 <= s["received"] <= 23  # ~20 new images in ~1 s per camera
        assert s["skipped"] >= s["received"] - 4
        assert s["depth"] is True
    # Paced to the cameras: about one call per image, not a busy loop.
    assert calls <= 2 * (stats[CAMERAS[0]]["received"] + stats[CAMERAS[1]]["received"]) + 4
    # The first frames handed over are each camera's newest, with registered depth attached.
    assert {f.camera for f in frames[:2]} == set(CAMERAS)
    assert all(f.depth_m is not None and np.allclose(f.depth_m, 2.5) for f in frames)
    assert frames[0].depth_m.shape == (12, 16)  # asked at a quarter of the size
    assert all(time.time() - f.acquisition_time_local < 0.2 for f in frames[:2])
    assert len(decoded) == 2 * len(frames)  # visual + depth, for taken frames only


def test_failed_calls_back_off_and_recover() -> None:
    service = FakeImageService(rate_hz=20.0)
    service.fail_until = time.time() + 0.6

    async def go() -> dict[str, Any]:
        source = _source(service, retry_backoff_s=0.05, retry_backoff_max_s=0.2)
        await source.start()
        await asyncio.sleep(1.2)
        stats = source.stats()
        await source.close()
        return stats

    stats = asyncio.run(go())
    for cam in CAMERAS:
        # 0.05, 0.1, 0.2, 0.2 ... within 0.6 s: a handful of failures, then streaming again.
        assert 3 <= stats[cam]["errors"] <= 6
        assert stats[cam]["received"] >= 8
