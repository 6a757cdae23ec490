"""Image service: the five body cameras (grey, JPEG by default, RAW on request), their
`*_depth_in_visual_frame` depth sources (same pixels and intrinsics as the grey image) and the
stereo cameras' own `*_depth` sources (424 x 240, sensor frame `frontleft` etc.), all depth as
DEPTH_U16 RAW in millimetres (depth_scale 1000).

Each source behaves like a camera running at `camera_rate_hz`: a frame is rendered at most once
per frame period, on demand, and every request within that period gets the same frame (same
acquisition time, same bytes; each encoding is made once per frame). A client looping without a
sleep therefore costs a cache lookup, not a render.

`stall(True)` makes every image RPC hang until un-stalled or until its deadline passes, to test
a client's perception watchdog.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import grpc
import numpy as np
from bosdyn.api import geometry_pb2, image_pb2, image_service_pb2_grpc
from bosdyn.client.image import ImageClient

from sim import render
from sim.body_state import BodyState
from sim.cameras import CameraSpec
from sim.robot_clock import NSEC_PER_SEC, RobotClock
from sim.scene import Scenario
from sim.services.common import InvalidRequest, Reply, ServiceSpec
from sim.services.frames import SnapshotBuilder
from sim.world import SimWorld

_LOGGER = logging.getLogger(__name__)

Image = image_pb2.Image
ImageResponse = image_pb2.ImageResponse
ImageSource = image_pb2.ImageSource

DEPTH_SCALE = 1000.0  # depth pixel value per metre (millimetres)
DEFAULT_JPEG_QUALITY = 75
EXPOSURE_S = 0.008

VISUAL_PIXEL_FORMATS = (Image.PIXEL_FORMAT_GREYSCALE_U8, Image.PIXEL_FORMAT_RGB_U8)
VISUAL_IMAGE_FORMATS = (Image.FORMAT_JPEG, Image.FORMAT_RAW)
DEPTH_PIXEL_FORMATS = (Image.PIXEL_FORMAT_DEPTH_U16,)
DEPTH_IMAGE_FORMATS = (Image.FORMAT_RAW,)


STEREO_DEPTH_WIDTH = 424
STEREO_DEPTH_HEIGHT = 240


def stereo_depth_cameras(cameras: dict[str, CameraSpec]) -> dict[str, CameraSpec]:
    """The `*_depth` sources: each body camera's stereo depth at 424 x 240 with square pixels and
    the same horizontal field of view, in its own sensor frame (`frontleft`, ...) mounted where the
    fisheye is (the sim does not model the small baseline between them)."""
    depth: dict[str, CameraSpec] = {}
    for camera in cameras.values():
        prefix = camera.frame_name.removesuffix("_fisheye")
        scale = STEREO_DEPTH_WIDTH / camera.width
        spec = dataclasses.replace(
            camera,
            name=f"{prefix}_depth",
            frame_name=prefix,
            depth_source_name=f"{prefix}_depth",
            width=STEREO_DEPTH_WIDTH,
            height=STEREO_DEPTH_HEIGHT,
            fx=camera.fx * scale,
            fy=camera.fx * scale,
            cx=(STEREO_DEPTH_WIDTH - 1) / 2.0,
            cy=(STEREO_DEPTH_HEIGHT - 1) / 2.0,
        )
        depth[spec.name] = spec
    return depth


class Unavailable(Exception):
    """A request this source cannot serve: carries the ImageResponse status."""

    def __init__(self, status: int) -> None:
        super().__init__(ImageResponse.Status.Name(status))
        self.status = status


@dataclass
class Frame:
    """One rendered frame and the encodings made from it so far."""

    body: BodyState
    pixels: np.ndarray  # grey uint8, or depth float32 metres
    encoded: dict[tuple[int, int, int, float], bytes] = field(default_factory=dict)
    snapshot: geometry_pb2.FrameTreeSnapshot | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class CameraFeed:
    """One image source: renders on demand, at most once per frame period."""

    def __init__(
        self,
        source: image_pb2.ImageSource,
        camera: CameraSpec,
        depth: bool,
        renderer: Callable[[CameraSpec, BodyState], np.ndarray],
        period_ns: int,
    ) -> None:
        self.source = source
        self.camera = camera
        self.depth = depth
        self._renderer = renderer
        self._period_ns = period_ns
        self._lock = threading.Lock()
        self._frame: Frame | None = None

    def _slot(self, robot_ns: int) -> int:
        """Frame period index: the camera produces one frame per slot (a fixed 1/rate grid)."""
        return robot_ns // self._period_ns

    def frame(self, world: SimWorld) -> Frame:
        arrived = self._slot(world.clock.now_ns())
        frame = self._frame
        if frame is not None and self._slot(frame.body.robot_ns) >= arrived:
            return frame
        # One render per period even when many requests arrive at once. A request that waited
        # here takes any frame started at or after its own arrival: on a loaded host a render
        # can outlast the period, and re-rendering for every waiter would queue them behind
        # each other (a real camera hands all of them its next frame).
        with self._lock:
            frame = self._frame
            if frame is not None and self._slot(frame.body.robot_ns) >= arrived:
                return frame
            body = world.snapshot()
            frame = Frame(body, self._renderer(self.camera, body))
            self._frame = frame
            return frame


def _pinhole_source(name: str, camera: CameraSpec, depth: bool) -> image_pb2.ImageSource:
    source = ImageSource(
        name=name,
        cols=camera.width,
        rows=camera.height,
        image_type=ImageSource.IMAGE_TYPE_DEPTH if depth else ImageSource.IMAGE_TYPE_VISUAL,
    )
    if depth:
        source.depth_scale = DEPTH_SCALE
        source.pixel_formats.extend(DEPTH_PIXEL_FORMATS)
        source.image_formats.extend(DEPTH_IMAGE_FORMATS)
    else:
        source.pixel_formats.extend(VISUAL_PIXEL_FORMATS)
        source.image_formats.extend(VISUAL_IMAGE_FORMATS)
    intrinsics = source.pinhole.intrinsics
    intrinsics.focal_length.x, intrinsics.focal_length.y = camera.fx, camera.fy
    intrinsics.principal_point.x, intrinsics.principal_point.y = camera.cx, camera.cy
    return source


def _resized_source(source: image_pb2.ImageSource, ratio: float) -> image_pb2.ImageSource:
    resized = image_pb2.ImageSource()
    resized.CopyFrom(source)
    resized.cols = max(1, int(round(source.cols * ratio)))
    resized.rows = max(1, int(round(source.rows * ratio)))
    intr = resized.pinhole.intrinsics
    intr.focal_length.x *= ratio
    intr.focal_length.y *= ratio
    # Pixel centres at integer coordinates: the principal point scales about -0.5.
    intr.principal_point.x = (intr.principal_point.x + 0.5) * ratio - 0.5
    intr.principal_point.y = (intr.principal_point.y + 0.5) * ratio - 0.5
    return resized


class ImageServicer(image_service_pb2_grpc.ImageServiceServicer):
    spec = ServiceSpec(ImageClient.default_service_name, ImageClient.service_type)

    def __init__(
        self,
        clock: RobotClock,
        world: SimWorld,
        scenario: Scenario,
        cameras: dict[str, CameraSpec],
        snapshots: SnapshotBuilder,
        camera_rate_hz: float = 15.0,
    ) -> None:
        if camera_rate_hz <= 0:
            raise ValueError(f"camera_rate_hz must be positive, got {camera_rate_hz}")
        self._clock = clock
        self._world = world
        self._scenario = scenario
        self._snapshots = snapshots
        period_ns = int(NSEC_PER_SEC / camera_rate_hz)
        self.feeds: dict[str, CameraFeed] = {}
        for camera in cameras.values():
            self.feeds[camera.name] = CameraFeed(
                _pinhole_source(camera.name, camera, depth=False), camera, False, self._render_grey, period_ns
            )
            self.feeds[camera.depth_source_name] = CameraFeed(
                _pinhole_source(camera.depth_source_name, camera, depth=True), camera, True, self._render_depth, period_ns
            )
        for depth_camera in stereo_depth_cameras(cameras).values():
            self.feeds[depth_camera.name] = CameraFeed(
                _pinhole_source(depth_camera.name, depth_camera, depth=True),
                depth_camera,
                True,
                self._render_depth,
                period_ns,
            )
        self._sources = [feed.source for feed in self.feeds.values()]
        self._unstalled = threading.Event()
        self._unstalled.set()
        self._closing = False

    def add_to_server(self, server: grpc.Server) -> None:
        image_service_pb2_grpc.add_ImageServiceServicer_to_server(self, server)

    # ------------------------------------------------------------------ stalling (watchdog tests)
    def stall(self, stalled: bool) -> None:
        if stalled:
            self._unstalled.clear()
        else:
            self._unstalled.set()

    def close(self) -> None:
        """Release any stalled requests (server shutdown)."""
        self._closing = True
        self._unstalled.set()

    def _wait_if_stalled(self, context: grpc.ServicerContext) -> None:
        """Block while stalled; if the caller's deadline passes meanwhile, fail the RPC with
        DEADLINE_EXCEEDED (never answer late with an empty response)."""
        while not self._unstalled.is_set():
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "image service stalled (sim test hook)")
            if not context.is_active():
                context.abort(grpc.StatusCode.CANCELLED, "client went away while the image service was stalled")
            self._unstalled.wait(0.05 if remaining is None else min(0.05, remaining))
        if self._closing:
            context.abort(grpc.StatusCode.UNAVAILABLE, "sim shutting down")

    # ------------------------------------------------------------------ rendering
    def _render_grey(self, camera: CameraSpec, body: BodyState) -> np.ndarray:
        return render.render_grey(camera, body.odom_tform_body, self._scenario, body.sim_time_s)

    def _render_depth(self, camera: CameraSpec, body: BodyState) -> np.ndarray:
        return render.render_depth(camera, body.odom_tform_body, self._scenario, body.sim_time_s)

    # ------------------------------------------------------------------ RPCs
    def ListImageSources(
        self, request: image_pb2.ListImageSourcesRequest, context: grpc.ServicerContext
    ) -> image_pb2.ListImageSourcesResponse:
        response = image_pb2.ListImageSourcesResponse()
        self._wait_if_stalled(context)
        with Reply(response, request, self._clock):
            response.image_sources.extend(self._sources)
        return response

    def GetImage(self, request: image_pb2.GetImageRequest, context: grpc.ServicerContext) -> image_pb2.GetImageResponse:
        response = image_pb2.GetImageResponse()
        self._wait_if_stalled(context)
        with Reply(response, request, self._clock):
            if not request.image_requests:
                raise InvalidRequest("image_requests is empty")
            for image_request in request.image_requests:
                self._answer(image_request, response.image_responses.add())
        return response

    def capture(self, request: image_pb2.ImageRequest) -> image_pb2.ImageResponse:
        """What GetImage answers for one request, for the robot's own services (the network
        compute bridge captures through this, not over gRPC to itself)."""
        out = ImageResponse()
        self._answer(request, out)
        return out

    def depth_metres(self, source_name: str) -> tuple[np.ndarray, CameraSpec] | None:
        """The latest depth frame in `source_name`'s pixels (metres, 0 = no return) and its camera,
        or None when that source has no depth aligned to it."""
        feed = self.feeds.get(source_name)
        if feed is None or feed.depth:
            return None
        depth_feed = self.feeds.get(feed.camera.depth_source_name)
        if depth_feed is None:
            return None
        return depth_feed.frame(self._world).pixels, depth_feed.camera

    def _answer(self, request: image_pb2.ImageRequest, out: image_pb2.ImageResponse) -> None:
        feed = self.feeds.get(request.image_source_name)
        if feed is None:
            out.source.name = request.image_source_name
            out.status = ImageResponse.STATUS_UNKNOWN_CAMERA
            return
        try:
            image_format, pixel_format = self._choose_formats(feed, request)
            ratio = request.resize_ratio
            if ratio < 0 or ratio > 1:
                raise Unavailable(ImageResponse.STATUS_UNSUPPORTED_RESIZE_RATIO_REQUESTED)
        except Unavailable as exc:
            out.source.CopyFrom(feed.source)
            out.status = exc.status
            return
        frame = feed.frame(self._world)
        quality = int(request.quality_percent) or DEFAULT_JPEG_QUALITY
        data, rows, cols = self._encode(frame, feed.depth, image_format, pixel_format, quality, ratio)
        out.source.CopyFrom(feed.source if ratio in (0, 1) else _resized_source(feed.source, ratio))
        shot = out.shot
        RobotClock.to_timestamp(frame.body.robot_ns, shot.acquisition_time)
        shot.transforms_snapshot.CopyFrom(self._frame_snapshot(frame))
        shot.frame_name_image_sensor = feed.camera.frame_name
        shot.capture_params.exposure_duration.FromNanoseconds(int(EXPOSURE_S * NSEC_PER_SEC))
        shot.capture_params.gain = 1.0
        image = shot.image
        image.cols, image.rows = cols, rows
        image.format = image_format
        image.pixel_format = pixel_format
        image.data = data
        out.status = ImageResponse.STATUS_OK

    @staticmethod
    def _choose_formats(feed: CameraFeed, request: image_pb2.ImageRequest) -> tuple[int, int]:
        supported_pixels = DEPTH_PIXEL_FORMATS if feed.depth else VISUAL_PIXEL_FORMATS
        supported_images = DEPTH_IMAGE_FORMATS if feed.depth else VISUAL_IMAGE_FORMATS
        pixel_format = request.pixel_format
        if pixel_format == Image.PIXEL_FORMAT_UNKNOWN:
            pixel_format = supported_pixels[0]
        elif pixel_format not in supported_pixels:
            fallback = next((f for f in request.fallback_formats if f in supported_pixels), None)
            if fallback is None:
                raise Unavailable(ImageResponse.STATUS_UNSUPPORTED_PIXEL_FORMAT_REQUESTED)
            pixel_format = fallback
        image_format = request.image_format
        if image_format == Image.FORMAT_UNKNOWN:
            # Visual sources send JPEG unless a pixel format was asked for (then the raw pixels).
            explicit_pixels = request.pixel_format != Image.PIXEL_FORMAT_UNKNOWN
            image_format = Image.FORMAT_RAW if feed.depth or explicit_pixels else Image.FORMAT_JPEG
        elif image_format not in supported_images:
            raise Unavailable(ImageResponse.STATUS_UNSUPPORTED_IMAGE_FORMAT_REQUESTED)
        return image_format, pixel_format

    @staticmethod
    def _encode(
        frame: Frame, depth: bool, image_format: int, pixel_format: int, quality: int, ratio: float
    ) -> tuple[bytes, int, int]:
        key = (image_format, pixel_format, quality if image_format == Image.FORMAT_JPEG else 0, ratio)
        pixels = frame.pixels
        rows, cols = pixels.shape[:2]
        resize = ratio not in (0, 1)
        if resize:
            cols, rows = max(1, int(round(cols * ratio))), max(1, int(round(rows * ratio)))
        with frame.lock:
            data = frame.encoded.get(key)
            if data is not None:
                return data, rows, cols
            if resize:
                pixels = cv2.resize(pixels, (cols, rows), interpolation=cv2.INTER_NEAREST if depth else cv2.INTER_AREA)
            if depth:
                millimetres = np.clip(np.rint(pixels * DEPTH_SCALE), 0, 65535).astype("<u2")
                data = millimetres.tobytes()
            else:
                if pixel_format == Image.PIXEL_FORMAT_RGB_U8:
                    pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
                if image_format == Image.FORMAT_JPEG:
                    # OpenCV encodes BGR; grey-to-RGB has equal channels, so the order cannot differ.
                    ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(min(max(quality, 1), 100))])
                    if not ok:
                        raise RuntimeError("JPEG encoding failed")
                    data = buf.tobytes()
                else:
                    data = np.ascontiguousarray(pixels).tobytes()
            frame.encoded[key] = data
            return data, rows, cols

    def _frame_snapshot(self, frame: Frame) -> geometry_pb2.FrameTreeSnapshot:
        if frame.snapshot is None:
            frame.snapshot = self._snapshots.snapshot(frame.body)
        return frame.snapshot
