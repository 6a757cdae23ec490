"""Foxglove live view: what the robot sees (each camera's latest frame and detection boxes) and
why it acts (the agent's state and events), for Foxglove Studio on the operator's laptop.

The pipeline only *offers* data (`offer_frame`, `offer_state`, `offer_event`): that stores a
reference in a per-camera "latest" slot and returns. A worker thread wakes at most `max_hz`
times a second, and only when a Foxglove client is subscribed does it encode and send, so the
live view never slows the pipeline and costs nothing while nobody watches.

Topics: /camera/<name>/image (foxglove.CompressedImage), /camera/<name>/detections
(foxglove.ImageAnnotations), /agent/state and /agent/events (JSON).

The Foxglove WebSocket protocol has no client authentication and this server offers no
services or parameters: it is view-only. It binds to loopback by default; on a network
interface, anyone who can reach the port can watch (not command) the robot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.control.drawing import Boxed, encode_jpeg, to_bgr
from agent.control.endpoints import DEFAULT_LIVE_VIEW_PORT, BindError
from agent.control.protocol import to_jsonable

log = logging.getLogger(__name__)

SPOT_PAYLOAD_PORTS = range(21000, 22001)


@dataclass
class _Offered:
    camera: str
    image: np.ndarray
    encoded: bytes | None
    is_depth: bool
    time: float
    detections: list[Boxed]


class LiveView:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_LIVE_VIEW_PORT,
        max_hz: float = 5.0,
        jpeg_quality: int = 75,
        name: str = "spot-cue-agent",
    ) -> None:
        if port != 0 and port not in SPOT_PAYLOAD_PORTS:
            log.warning("live view port %d is outside 21000-22000: a Spot payload cannot open it", port)
        self.host = host
        self.requested_port = port
        self.max_hz = max_hz
        self.jpeg_quality = jpeg_quality
        self.name = name
        self.frames_sent = 0
        self.frames_skipped = 0  # offered but replaced before the worker sent them
        self._lock = threading.Lock()
        self._frames: dict[str, _Offered] = {}
        self._state: dict[str, Any] | None = None
        self._events: list[tuple[str, float, dict[str, Any]]] = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._context: Any = None
        self._image_channels: dict[str, Any] = {}
        self._annotation_channels: dict[str, Any] = {}
        self._state_channel: Any = None
        self._events_channel: Any = None

    @property
    def port(self) -> int:
        return int(self._server.port) if self._server is not None else self.requested_port

    def start(self) -> None:
        import foxglove

        self._context = foxglove.Context()
        try:
            self._server = foxglove.start_server(
                name=self.name, host=self.host, port=self.requested_port, context=self._context
            )
        except Exception as exc:  # the SDK raises RuntimeError with the OS reason
            raise BindError(
                f"cannot start the Foxglove live view on {self.host}:{self.requested_port}: {exc}"
            ) from exc
        self._state_channel = foxglove.Channel("/agent/state", context=self._context)
        self._events_channel = foxglove.Channel("/agent/events", context=self._context)
        self._thread = threading.Thread(target=self._run, name="live-view", daemon=True)
        self._thread.start()
        log.info("Foxglove live view on ws://%s:%d", self.host, self.port)

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    # --- called by the pipeline (cheap, any thread) ----------------------------------------

    def offer_frame(
        self,
        camera: str,
        image: np.ndarray,
        time_local: float,
        detections: Iterable[Boxed] = (),
        encoded: bytes | None = None,
        is_depth: bool = False,
    ) -> None:
        offered = _Offered(camera, image, encoded, is_depth, time_local, list(detections))
        with self._lock:
            if camera in self._frames:
                self.frames_skipped += 1
            self._frames[camera] = offered
        self._wake.set()

    def offer_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            self._state = state
        self._wake.set()

    def offer_event(self, topic: str, when: float, data: dict[str, Any]) -> None:
        with self._lock:
            if len(self._events) < 1000:  # bounded: a stalled worker must not grow memory
                self._events.append((topic, when, data))
        self._wake.set()

    # --- worker ----------------------------------------------------------------------------

    def _run(self) -> None:
        period = 1.0 / self.max_hz
        while not self._stopping.is_set():
            started = time.monotonic()
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self._stopping.is_set():
                break
            with self._lock:
                frames, self._frames = self._frames, {}
                state, self._state = self._state, None
                events, self._events = self._events, []
            try:
                self._send(frames, state, events)
            except Exception:  # a bad frame must not end the live view
                log.exception("live view publishing failed")
            # Throttle: at most max_hz rounds a second, whatever the pipeline offers.
            self._stopping.wait(max(0.0, period - (time.monotonic() - started)))

    def _send(
        self,
        frames: dict[str, _Offered],
        state: dict[str, Any] | None,
        events: list[tuple[str, float, dict[str, Any]]],
    ) -> None:
        from foxglove.messages import CompressedImage, Timestamp

        if state is not None and self._state_channel.has_sinks():
            self._state_channel.log(to_jsonable(state))
        if self._events_channel.has_sinks():
            for topic, when, data in events:
                self._events_channel.log(
                    to_jsonable({"topic": topic, "time": when, "data": data}),
                    log_time=int(when * 1e9),
                )
        for camera, offered in frames.items():
            image_channel, annotation_channel = self._channels(camera)
            stamp = Timestamp.from_epoch_secs(offered.time)
            log_time = int(offered.time * 1e9)
            if image_channel.has_sinks():
                jpeg = offered.encoded
                if jpeg is None or offered.is_depth:
                    jpeg = encode_jpeg(to_bgr(offered.image, offered.is_depth), self.jpeg_quality)
                image_channel.log(
                    CompressedImage(timestamp=stamp, frame_id=camera, data=jpeg, format="jpeg"),
                    log_time=log_time,
                )
                self.frames_sent += 1
            if annotation_channel.has_sinks():
                annotation_channel.log(_annotations(stamp, offered.detections), log_time=log_time)

    def _channels(self, camera: str) -> tuple[Any, Any]:
        from foxglove.channels import CompressedImageChannel, ImageAnnotationsChannel

        if camera not in self._image_channels:
            self._image_channels[camera] = CompressedImageChannel(
                f"/camera/{camera}/image", context=self._context
            )
            self._annotation_channels[camera] = ImageAnnotationsChannel(
                f"/camera/{camera}/detections", context=self._context
            )
        return self._image_channels[camera], self._annotation_channels[camera]

    def __enter__(self) -> LiveView:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _annotations(stamp: Any, detections: list[Boxed]) -> Any:
    from foxglove.messages import (
        Color,
        ImageAnnotations,
        Point2,
        PointsAnnotation,
        PointsAnnotationType,
        TextAnnotation,
    )

    boxes, texts = [], []
    for det in detections:
        x1, y1, x2, y2 = (float(v) for v in det.box)
        color = Color(r=1.0, g=0.8, b=0.0, a=1.0) if det.label.startswith("tag:") else Color(
            r=0.0, g=1.0, b=0.0, a=1.0
        )
        boxes.append(
            PointsAnnotation(
                timestamp=stamp,
                type=PointsAnnotationType.LineLoop,
                points=[Point2(x=x1, y=y1), Point2(x=x2, y=y1), Point2(x=x2, y=y2), Point2(x=x1, y=y2)],
                outline_color=color,
                thickness=2.0,
            )
        )
        texts.append(
            TextAnnotation(
                timestamp=stamp,
                position=Point2(x=x1, y=max(0.0, y1 - 4.0)),
                text=f"{det.label} {float(det.score):.2f}",
                font_size=14.0,
                text_color=Color(r=0.0, g=0.0, b=0.0, a=1.0),
                background_color=color,
            )
        )
    return ImageAnnotations(timestamp=stamp, points=boxes, texts=texts)
