"""`SpotCameraSource`: the `FrameSource` seam on Spot's (or the sim's) image service.

One asyncio task per camera keeps one `GetImage` call in flight at a time (`get_image_async`,
JPEG for visual sources), paced to the camera's frame period (`FramePacer`), and drops each new
image into that camera's latest slot, overwriting an untaken one (counted as skipped). The robot
answers with its newest image, so an answer carrying an image already received is a repeat and
is dropped.

With `depth` on, the same call also asks for the camera's registered depth
(`<camera>_depth_in_visual_frame`, as the SDK's fiducial_follow does): both are taken together,
and perception places detections in 3D from it (`Frame.depth_m`).

Responses stay encoded until the pipeline asks for a frame: only the frame it takes is decoded,
in a worker thread, so skipped frames cost nothing and the event loop never decodes. Capture
times are converted from the robot's clock to ours through time sync when decoded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from bosdyn.api import image_pb2
from bosdyn.client.exceptions import Error as SdkError
from bosdyn.client.exceptions import RpcError
from bosdyn.client.image import ImageClient, build_image_request
from bosdyn.client.robot import Robot as SdkRobot
from bosdyn.util import duration_to_seconds

from agent.spot.config import CameraConfig
from agent.spot.latest import LatestSlots
from agent.spot.sdk_async import await_sdk
from perception.decode import FrameDecodeError, RobotToLocal, decode_image_response
from perception.frame import Frame

log = logging.getLogger(__name__)

Decode = Callable[[Any, RobotToLocal], Frame]

_ImageResponse: TypeAlias = image_pb2.ImageResponse


class UnknownCameraError(ValueError):
    """A configured camera is not one of the robot's image sources."""


def robot_to_local_converter(sdk_robot: SdkRobot) -> RobotToLocal:
    """Robot-clock seconds -> local seconds, using the time-sync thread's latest skew estimate."""
    endpoint = sdk_robot.time_sync.endpoint

    def robot_to_local(t_robot: float) -> float:
        # clock_skew = robot clock - local clock (re-read: the time-sync thread refines it).
        return t_robot - duration_to_seconds(endpoint.clock_skew)

    return robot_to_local


def registered_depth_source(camera: str) -> str:
    """Spot's name for the depth registered to a visual camera's pixels."""
    if camera.endswith("_fisheye_image"):
        return camera[: -len("_fisheye_image")] + "_depth_in_visual_frame"
    if camera == "hand_color_image":
        return "hand_depth_in_hand_color_frame"
    return camera + "_depth_in_visual_frame"


@dataclass
class CameraStreamStats:
    received: int = 0  # new images (repeats excluded)
    repeats: int = 0  # answers carrying an image already received
    errors: int = 0  # failed or timed-out calls
    decode_failures: int = 0
    depth_failures: int = 0  # depth missing or undecodable (the frame is used without it)
    first_at: float | None = None
    last_at: float | None = None

    def fps(self) -> float:
        if self.first_at is None or self.last_at is None or self.last_at <= self.first_at:
            return 0.0
        return (self.received - 1) / (self.last_at - self.first_at)


class FramePacer:
    """When to ask a camera again: just after its next image is due, not blindly in a loop.

    After a new image the next request goes out so that it reaches the robot one camera period
    after that image's capture, plus a little margin (a capture later than the request shows how
    long a request takes to arrive); after a repeat (asked too early) it retries at the polling
    cap. Requests never go out faster than the cap.
    """

    MARGIN_S = 0.005

    def __init__(self, period_s: float, min_interval_s: float) -> None:
        self.period_s = period_s
        self.min_interval_s = min_interval_s

    def after_new(self, asked_at: float, captured_at: float) -> float:
        transit = min(max(captured_at - asked_at, 0.0), self.period_s / 2)
        due = captured_at + self.period_s + self.MARGIN_S - transit
        return max(asked_at + self.min_interval_s, due)

    def after_repeat(self, asked_at: float) -> float:
        return asked_at + self.min_interval_s


@dataclass
class _Shot:
    visual: _ImageResponse
    depth: _ImageResponse | None


class SpotCameraSource:
    """Streams the configured cameras of a connected robot (or the sim)."""

    def __init__(
        self,
        image_client: ImageClient,
        cameras: list[str],
        robot_to_local: RobotToLocal,
        jpeg_quality: int = 75,
        request_timeout_s: float = 0.5,
        max_poll_hz: float = 60.0,
        frame_rate_hz: float = 15.0,
        depth: bool = True,
        depth_resize_ratio: float = 0.25,
        retry_backoff_s: float = 0.1,
        retry_backoff_max_s: float = 1.0,
        decode: Decode = decode_image_response,
    ) -> None:
        self.image_client = image_client
        self.cameras = list(cameras)
        self.one_at_a_time = False  # live: the newest frame per camera wins
        self.robot_to_local = robot_to_local
        self.jpeg_quality = jpeg_quality
        self.request_timeout_s = request_timeout_s
        self.min_interval_s = 1.0 / max_poll_hz
        self.frame_period_s = 1.0 / frame_rate_hz
        self.want_depth = depth
        self.depth_resize_ratio = depth_resize_ratio
        self.retry_backoff_s = retry_backoff_s
        self.retry_backoff_max_s = retry_backoff_max_s
        self._decode = decode
        self._slots: LatestSlots[_Shot] = LatestSlots(self.cameras)
        self._tasks: list[asyncio.Task[None]] = []
        self._depth_types: set[str] = set()  # configured cameras that are depth sources
        self._depth_for: dict[str, str] = {}  # visual camera -> its registered depth source
        self._decode_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="decode"
        )
        self._stats = {camera: CameraStreamStats() for camera in self.cameras}
        self._seq = 0

    @classmethod
    def for_robot(
        cls, sdk_robot: SdkRobot, cameras: CameraConfig, decode_min_side: int | None = None
    ) -> SpotCameraSource:
        """The robot's image service, streamed as `cameras` (the config's `cameras:`) says;
        `decode_min_side`: decode JPEGs only as large as the detector needs."""
        client: ImageClient = sdk_robot.ensure_client(ImageClient.default_service_name)
        return cls(
            client,
            cameras.sources,
            robot_to_local_converter(sdk_robot),
            jpeg_quality=cameras.jpeg_quality,
            request_timeout_s=cameras.request_timeout_s,
            max_poll_hz=cameras.max_poll_hz,
            frame_rate_hz=cameras.frame_rate_hz,
            depth=cameras.depth,
            depth_resize_ratio=cameras.depth_resize_ratio,
            decode=functools.partial(decode_image_response, min_side=decode_min_side),
        )

    # ---------------------------------------------------------------------------- streaming
    async def start(self) -> None:
        """Check the cameras exist on the robot, then start one stream task per camera (once:
        starting a started source does nothing)."""
        if self._tasks:
            return
        sources = await await_sdk(
            self.image_client.list_image_sources_async(timeout=max(2.0, self.request_timeout_s))
        )
        offered = {s.name: s for s in sources}
        missing = [c for c in self.cameras if c not in offered]
        if missing:
            raise UnknownCameraError(
                f"camera(s) {', '.join(missing)} not offered by the robot; available: "
                f"{', '.join(sorted(offered))}"
            )
        depth_type = image_pb2.ImageSource.IMAGE_TYPE_DEPTH
        self._depth_types = {c for c in self.cameras if offered[c].image_type == depth_type}
        if self.want_depth:
            for camera in self.cameras:
                depth = registered_depth_source(camera)
                if camera not in self._depth_types and depth in offered:
                    self._depth_for[camera] = depth
        for camera in self.cameras:
            self._tasks.append(asyncio.create_task(self._stream(camera), name=f"camera:{camera}"))

    def _requests(self, camera: str, depth_ratio: float) -> list[image_pb2.ImageRequest]:
        if camera in self._depth_types:
            return [build_image_request(camera)]  # the robot's default for depth: RAW U16
        requests = [
            build_image_request(
                camera, quality_percent=self.jpeg_quality, image_format=image_pb2.Image.FORMAT_JPEG
            )
        ]
        if camera in self._depth_for:
            ratio = None if depth_ratio >= 1.0 else depth_ratio
            requests.append(build_image_request(self._depth_for[camera], resize_ratio=ratio))
        return requests

    async def _stream(self, camera: str) -> None:
        """Keep fetching one camera's newest image, asking again just after the next is due."""
        depth_ratio = self.depth_resize_ratio
        requests = self._requests(camera, depth_ratio)
        stats = self._stats[camera]
        pacer = FramePacer(self.frame_period_s, self.min_interval_s)
        wait = self.retry_backoff_s
        failing = False
        last_capture: tuple[int, int] | None = None
        # The first call also sets up the channel (TLS handshake, directory lookup): give it
        # longer than a streaming call.
        timeout = max(self.request_timeout_s, 2.0)
        while True:
            asked_at = time.time()
            try:
                responses = await await_sdk(
                    self.image_client.get_image_async(requests, timeout=timeout)
                )
            except (RpcError, SdkError) as exc:
                stats.errors += 1
                if not failing:
                    log.warning(
                        "camera request failed",
                        extra={"event": "camera_error", "camera": camera,
                               "error": exc.__class__.__name__},
                    )
                failing = True
                await asyncio.sleep(wait)
                wait = min(wait * 2, self.retry_backoff_max_s)
                continue
            timeout = self.request_timeout_s
            if failing:
                log.info("camera streaming again", extra={"event": "camera_ok", "camera": camera})
                failing, wait = False, self.retry_backoff_s
            visual = responses[0]
            depth = responses[1] if len(responses) > 1 else None
            if (
                depth is not None
                and depth.status == _ImageResponse.STATUS_UNSUPPORTED_RESIZE_RATIO_REQUESTED
                and depth_ratio < 1.0
            ):
                log.warning(
                    "robot refused the depth resize ratio; asking for full-size depth",
                    extra={"event": "depth_resize_refused", "camera": camera},
                )
                depth_ratio = 1.0
                requests = self._requests(camera, depth_ratio)
            stamp = visual.shot.acquisition_time
            capture = (stamp.seconds, stamp.nanos)
            if capture == last_capture:
                stats.repeats += 1  # the robot had no newer image yet
                next_at = pacer.after_repeat(asked_at)
            else:
                last_capture = capture
                now = time.monotonic()
                stats.received += 1
                stats.first_at = stats.first_at if stats.first_at is not None else now
                stats.last_at = now
                self._slots.put(camera, _Shot(visual, depth))
                captured_local = self.robot_to_local(stamp.seconds + stamp.nanos * 1e-9)
                next_at = pacer.after_new(asked_at, captured_local)
            await asyncio.sleep(max(0.0, next_at - time.time()))

    # ------------------------------------------------------------------------ FrameSource
    def _decode_shot(self, shot: _Shot) -> Frame:
        frame = self._decode(shot.visual, self.robot_to_local)
        if shot.depth is not None:
            try:
                depth = self._decode(shot.depth, self.robot_to_local)
            except FrameDecodeError:
                self._stats[frame.camera].depth_failures += 1
            else:
                frame.depth_m = depth.image
        return frame

    async def frames(self) -> AsyncIterator[Frame]:
        loop = asyncio.get_running_loop()
        while True:
            taken = await self._slots.take()
            if taken is None:
                return
            camera, shot = taken
            try:
                frame = await loop.run_in_executor(self._decode_pool, self._decode_shot, shot)
            except FrameDecodeError as exc:
                self._stats[camera].decode_failures += 1
                log.warning(
                    "frame not decodable",
                    extra={"event": "decode_failed", "camera": camera, "error": str(exc)},
                )
                continue
            self._seq += 1
            frame.seq = self._seq
            yield frame

    def stats(self) -> dict[str, dict[str, Any]]:
        out = {}
        for camera, s in self._stats.items():
            slot = self._slots.stats.get(camera)
            out[camera] = {
                "camera_fps": round(s.fps(), 2),
                "received": s.received,
                "repeats": s.repeats,
                "skipped": slot.skipped if slot else 0,
                "errors": s.errors,
                "decode_failures": s.decode_failures,
                "depth_failures": s.depth_failures,
                "depth": camera in self._depth_for,
            }
        return out

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._slots.close()
        self._decode_pool.shutdown(wait=False, cancel_futures=True)
