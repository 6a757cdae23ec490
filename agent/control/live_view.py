"""Foxglove live view: what the robot sees (each camera's latest image, its detection boxes, the
cameras and sightings placed in 3D) and why it acts (the agent's state, events and commands),
for Foxglove on the operator's laptop.

Topics, schemas and frame ids are the recording's (`agent.recording.format`), so one Foxglove
layout serves the live view and recordings: `/camera/<name>/compressed` (or `/image` for depth,
32FC1), `/camera/<name>/calibration`, `/camera/<name>/annotations`, `/tf`, `/sightings`,
`/events` and `/commands`; plus `/agent/state` (health, live only).

The pipeline only *offers* data (`offer_frame`, `offer_state`, `offer_record`): that stores a
reference in a per-camera "latest" slot (or a bounded list) and returns. A worker thread wakes
at most `max_hz` times a second, and builds and sends a message only for topics a viewer is
subscribed to, so the live view never slows the pipeline and costs nothing while nobody watches.

Viewers: the foxglove-sdk server speaks the protocol as `foxglove.sdk.v1`; a relay in front of
it (`subprotocol_relay`) also accepts the older name `foxglove.websocket.v1`, so Foxglove
(app.foxglove.dev and desktop, old and new), Lichtblick and `@foxglove/ws-protocol` clients all
connect to the same port.

The Foxglove WebSocket protocol has no client authentication and this server offers no
services or parameters: it is view-only. It binds to loopback by default; on a network
interface, anyone who can reach the port can watch (not command) the robot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from agent.control.endpoints import DEFAULT_LIVE_VIEW_PORT, BindError
from agent.control.protocol import to_jsonable
from agent.recording import format as fmt
from agent.recording import foxglove as fm
from perception.detection import FrameResult
from perception.frame import Frame

log = logging.getLogger(__name__)

SPOT_PAYLOAD_PORTS = range(21000, 22001)
MAX_PENDING_RECORDS = 1000  # events/commands waiting for the worker: a stalled worker drops

# Channel type of each per-camera topic kind (channels exist before any viewer subscribes, so
# viewers see every topic; a message is only built for a subscribed channel).
_CAMERA_CHANNELS = {
    fmt.KIND_COMPRESSED: "CompressedImageChannel",
    fmt.KIND_RAW: "RawImageChannel",
    fmt.KIND_CALIBRATION: "CameraCalibrationChannel",
    fmt.KIND_ANNOTATIONS: "ImageAnnotationsChannel",
}


class LiveView:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_LIVE_VIEW_PORT,
        max_hz: float = 5.0,
        name: str = "spot-cue-agent",
    ) -> None:
        if port != 0 and port not in SPOT_PAYLOAD_PORTS:
            log.warning("live view port %d is outside 21000-22000: a Spot payload cannot open it", port)
        self.host = host
        self.requested_port = port
        self.max_hz = max_hz
        self.name = name
        self.frames_sent = 0
        self.frames_skipped = 0  # offered but replaced before the worker sent them
        self.records_dropped = 0  # events/commands over MAX_PENDING_RECORDS
        self._lock = threading.Lock()
        self._frames: dict[str, tuple[Frame, FrameResult | None]] = {}
        self._state: dict[str, Any] | None = None
        self._records: list[tuple[str, float, dict[str, Any]]] = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._relay: Any = None
        self._context: Any = None
        self._channels: dict[str, Any] = {}

    @property
    def port(self) -> int:
        return int(self._relay.port) if self._relay is not None else self.requested_port

    def start(self) -> None:
        import foxglove

        from agent.control.subprotocol_relay import SubprotocolRelay

        self._context = foxglove.Context()
        try:
            # The SDK server stays on loopback; viewers reach it through the relay.
            self._server = foxglove.start_server(
                name=self.name, host="127.0.0.1", port=0, context=self._context
            )
            self._relay = SubprotocolRelay(self.host, self.requested_port, int(self._server.port))
            self._relay.start()
        except Exception as exc:  # the SDK raises RuntimeError, the relay OSError
            self.close()
            raise BindError(
                f"cannot start the Foxglove live view on {self.host}:{self.requested_port}: {exc}"
            ) from exc
        self._thread = threading.Thread(target=self._run, name="live-view", daemon=True)
        self._thread.start()
        log.info("Foxglove live view on ws://%s:%d", self.host, self.port)

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._relay is not None:
            self._relay.close()
            self._relay = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    # --- called by the pipeline (cheap, any thread) ----------------------------------------

    def offer_frame(self, frame: Frame, result: FrameResult | None = None) -> None:
        """A camera's newest frame and its detection result (replaces an unsent one)."""
        with self._lock:
            if frame.camera in self._frames:
                self.frames_skipped += 1
            self._frames[frame.camera] = (frame, result)
        self._wake.set()

    def offer_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            self._state = state
        self._wake.set()

    def offer_record(self, topic: str, when: float, data: dict[str, Any]) -> None:
        """A JSON record on `/events` or `/commands`, shaped as in recordings."""
        with self._lock:
            if len(self._records) < MAX_PENDING_RECORDS:  # bounded: a stalled worker drops
                self._records.append((topic, when, data))
            else:
                self.records_dropped += 1
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
                records, self._records = self._records, []
            try:
                self._send(frames, state, records)
            except Exception:  # a bad frame must not end the live view
                log.exception("live view publishing failed")
            # Throttle: at most max_hz rounds a second, whatever the pipeline offers.
            self._stopping.wait(max(0.0, period - (time.monotonic() - started)))

    def _send(
        self,
        frames: dict[str, tuple[Frame, FrameResult | None]],
        state: dict[str, Any] | None,
        records: list[tuple[str, float, dict[str, Any]]],
    ) -> None:
        if state is not None:
            channel = self._json_channel(fmt.TOPIC_AGENT_STATE, None)
            if channel.has_sinks():
                channel.log(to_jsonable(state))
        for topic, when, data in records:
            channel = self._json_channel(topic, topic)
            if channel.has_sinks():
                channel.log(fmt.dumps(data), log_time=fmt.to_ns(when))
        for frame, result in frames.values():
            self._send_frame(frame, result)

    def _send_frame(self, frame: Frame, result: FrameResult | None) -> None:
        log_time = fmt.to_ns(frame.acquisition_time_local)
        # Transforms and calibration first: a viewer that has the image can place it.
        transforms = fm.transforms_message(frame)
        if transforms is not None:
            self._publish(fmt.TOPIC_TRANSFORMS, "FrameTransformsChannel", lambda: transforms, log_time)
        camera_topic = fmt.camera_topic
        if frame.intrinsics is not None:
            self._publish(
                camera_topic(frame.camera, fmt.KIND_CALIBRATION),
                _CAMERA_CHANNELS[fmt.KIND_CALIBRATION],
                lambda: fm.calibration_message(frame),
                log_time,
            )
        kind = fmt.KIND_RAW if frame.image.dtype == np.float32 else fmt.KIND_COMPRESSED
        if self._publish(
            camera_topic(frame.camera, kind),
            _CAMERA_CHANNELS[kind],
            lambda: fm.image_message(frame, lossless=False)[2],
            log_time,
        ):
            self.frames_sent += 1
        if result is None:
            return
        self._publish(
            camera_topic(frame.camera, fmt.KIND_ANNOTATIONS),
            _CAMERA_CHANNELS[fmt.KIND_ANNOTATIONS],
            lambda: fm.annotations_message(result),
            log_time,
        )
        if any(s.position_odom is not None for s in result.sightings):
            self._publish(
                fmt.TOPIC_SIGHTINGS, "SceneUpdateChannel", lambda: fm.sightings_message(result), log_time
            )

    def _publish(self, topic: str, channel_type: str, build: Callable[[], Any], log_time: int) -> bool:
        """Log `build()` on the topic if a viewer is subscribed; True if something was sent."""
        channel = self._channels.get(topic)
        if channel is None:
            from foxglove import channels

            channel = getattr(channels, channel_type)(topic, context=self._context)
            self._channels[topic] = channel
        if not channel.has_sinks():
            return False
        message = build()
        if message is None:
            return False
        channel.log(message, log_time=log_time)
        return True

    def _json_channel(self, topic: str, schema_key: str | None) -> Any:
        channel = self._channels.get(topic)
        if channel is None:
            import foxglove

            schema = fmt.JSON_SCHEMAS[schema_key] if schema_key is not None else None
            channel = foxglove.Channel(topic, schema=schema, context=self._context)
            self._channels[topic] = channel
        return channel

    def __enter__(self) -> LiveView:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
