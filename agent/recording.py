"""`Recorder`: writes what the agent saw, decided and did to an MCAP file Foxglove can open.

The pipeline calls the `record_*` methods from its event loop; they only copy a reference into a
bounded queue and return at once. A writer thread turns queue items into Foxglove messages and
writes them with `foxglove-sdk`'s MCAP writer. When the queue is full the item is dropped and
counted, never waited for: a slow disk must not slow the robot down. Frames are dropped first
(they are refused while the queue is more than `frame_fill_limit` full), so the small records that
replay needs to reproduce commands keep room.

Frames are stored as they were received: JPEG bytes untouched in `foxglove.CompressedImage`;
frames that came without JPEG bytes as lossless PNG (grey/BGR) or `foxglove.RawImage` 32FC1
(depth, metres). A frame's log time is its local acquisition time; everything else is logged at
the pipeline-clock time it happened, so replaying a recording writes the same times again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from agent import recording_format as fmt
from agent.events import AgentEvent
from agent.observers import PipelineObserver
from agent.robot import RobotStatus
from behaviors.commands import MotionCommand, command_to_dict
from perception.detection import FrameResult
from perception.frame import Frame

log = logging.getLogger(__name__)

_STOP = object()


class RecordingError(RuntimeError):
    """The recording file cannot be created."""


def check_recording_path(path: Path, overwrite: bool = False) -> None:
    """Raise `RecordingError` unless a recording can be created at `path`."""
    if path.exists() and not overwrite:
        raise RecordingError(f"{path}: already exists (refusing to overwrite it)")
    if not path.parent.is_dir():
        raise RecordingError(f"{path}: directory {path.parent} does not exist")


@dataclass
class RecorderStats:
    written: dict[str, int] = field(default_factory=dict)  # per record kind
    dropped: dict[str, int] = field(default_factory=dict)  # queue full, per record kind
    write_errors: int = 0
    last_error: str = ""
    engine_steps: int = 0  # engine inputs (observed results + control steps), dropped or not

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def written_total(self) -> int:
        return sum(self.written.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "written": dict(self.written),
            "dropped": dict(self.dropped),
            "dropped_total": self.dropped_total,
            "write_errors": self.write_errors,
            "last_error": self.last_error,
            "engine_steps": self.engine_steps,
        }


@dataclass(frozen=True)
class _Item:
    kind: str
    payload: Any


_COLORS = [  # RGBA, one per class (stable: picked by a hash of the label)
    (0.90, 0.10, 0.10),
    (0.10, 0.65, 0.95),
    (0.15, 0.80, 0.25),
    (0.95, 0.70, 0.05),
    (0.70, 0.25, 0.90),
    (0.95, 0.40, 0.70),
    (0.10, 0.85, 0.80),
    (0.95, 0.55, 0.15),
]


def _color_for(label: str) -> tuple[float, float, float]:
    return _COLORS[zlib.crc32(label.encode()) % len(_COLORS)]


class Recorder:
    """Bounded, non-blocking MCAP recorder.

    `queue_size` bounds the items waiting for the writer (a frame is one item). `chunk_size` is
    the MCAP chunk size: at most this much (the chunk being filled) is lost if the process dies
    without `close()`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        queue_size: int = 256,
        frame_fill_limit: float = 0.75,
        overwrite: bool = False,
        chunk_size: int = 256 * 1024,
        compression: str | None = "zstd",
        metadata: dict[str, str] | None = None,
    ) -> None:
        import foxglove
        from foxglove.mcap import MCAPCompression, MCAPWriteOptions

        self.path = Path(path)
        check_recording_path(self.path, overwrite)
        compressions = {"zstd": MCAPCompression.Zstd, "lz4": MCAPCompression.Lz4, None: None}
        if compression not in compressions:
            raise ValueError(f"compression must be zstd, lz4 or None, not {compression!r}")
        self._context = foxglove.Context()
        options = MCAPWriteOptions(
            compression=compressions[compression],
            chunk_size=chunk_size,
            compression_threads=0,  # compress on the writer thread: no extra threads
        )
        try:
            self._writer = foxglove.open_mcap(
                self.path, context=self._context, allow_overwrite=overwrite, writer_options=options
            )
        except Exception as exc:
            raise RecordingError(f"{self.path}: cannot create recording: {exc}") from exc
        header = {"format_version": str(fmt.FORMAT_VERSION), **(metadata or {})}
        self._writer.write_metadata(fmt.RECORDING_METADATA, header)

        self._queue: queue.Queue[_Item | object] = queue.Queue(maxsize=queue_size)
        self._frame_limit = max(1, int(queue_size * frame_fill_limit))
        self._channels: dict[str, Any] = {}
        self._stats = RecorderStats()
        self._stats_lock = threading.Lock()
        self._step = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="mcap-recorder", daemon=True)
        self._thread.start()

    # --- producer side (pipeline thread): never blocks ------------------------------------

    def _offer(self, kind: str, payload: Any, limit: int | None = None) -> bool:
        if self._closed:
            return False
        if limit is not None and self._queue.qsize() >= limit:
            self._count_drop(kind)
            return False
        try:
            self._queue.put_nowait(_Item(kind, payload))
        except queue.Full:
            self._count_drop(kind)
            return False
        return True

    def _count_drop(self, kind: str) -> None:
        with self._stats_lock:
            self._stats.dropped[kind] = self._stats.dropped.get(kind, 0) + 1

    def _next_step(self) -> int:
        # Steps are numbered whether or not the item is dropped: a gap tells replay it is missing.
        step = self._step
        self._step += 1
        return step

    def record_frame(self, frame: Frame) -> bool:
        """A frame as received. False if it was dropped (queue full)."""
        # A shallow copy: later reassignment of the pipeline's frame fields cannot reach us.
        return self._offer("frame", dataclasses.replace(frame), self._frame_limit)

    def record_observed(self, result: FrameResult, time: float) -> bool:
        """A detection result, at the moment the cue engine observed it (pipeline clock)."""
        return self._offer("result", (self._next_step(), time, result))

    def record_step(self, time: float, trigger: str = "tick") -> bool:
        """A control step at `time` (pipeline clock): "tick" (periodic) or "cue" (reaction)."""
        return self._offer("step", (self._next_step(), time, trigger))

    def record_status(
        self, time: float, status: RobotStatus | None, error: BaseException | None = None
    ) -> bool:
        """The robot status a control step got (or the error it got instead)."""
        error_data = None if error is None else {
            "kind": type(error).__name__, "message": str(error)
        }
        return self._offer("status", (time, fmt.jsonable(status), error_data))

    def record_event(self, kind: str, time: float, data: Any = None) -> bool:
        """A cue firing or behavior state change."""
        return self._offer("event", (kind, time, fmt.jsonable(data)))

    def record_command(self, time: float, command: MotionCommand, outcome: str = "sent") -> bool:
        """A command the agent sent (`outcome` "sent") or that was refused ("refused: why")."""
        return self._offer("command", (time, command_to_dict(command), outcome))

    def stats(self) -> RecorderStats:
        with self._stats_lock:
            return dataclasses.replace(
                self._stats,
                written=dict(self._stats.written),
                dropped=dict(self._stats.dropped),
                engine_steps=self._step,
            )

    def close(self, timeout_s: float = 30.0, keep_empty: bool = False) -> RecorderStats:
        """Write what is queued, then the stats, and close the file. Safe to call twice.

        A recording that never got a single message (the run failed before it started) is
        deleted, unless `keep_empty`: it holds nothing, and would only block the next run
        that records to the same path.
        """
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)  # the only blocking put: shutdown may wait for the writer
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("recorder: writer did not finish within %.0f s", timeout_s)
            stats = self.stats()
            try:
                self._writer.write_metadata(
                    fmt.RECORDING_STATS_METADATA,
                    {k: json.dumps(v) for k, v in stats.as_dict().items()},
                )
                self._writer.close()
            except Exception as exc:
                log.error("recorder: closing %s failed: %s", self.path, exc)
            if stats.written_total == 0 and stats.dropped_total == 0 and not keep_empty:
                self.path.unlink(missing_ok=True)
                log.info("recorder: nothing was recorded; removed %s", self.path)
        return self.stats()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, _Item)
            try:
                getattr(self, f"_write_{item.kind}")(item.payload)
            except Exception as exc:  # one bad item must not stop the recording
                with self._stats_lock:
                    self._stats.write_errors += 1
                    self._stats.last_error = f"{item.kind}: {exc}"
                log.warning("recorder: could not write a %s: %s", item.kind, exc)
                continue
            with self._stats_lock:
                self._stats.written[item.kind] = self._stats.written.get(item.kind, 0) + 1

    def _channel(self, topic: str, factory: Any) -> Any:
        channel = self._channels.get(topic)
        if channel is None:
            channel = self._channels[topic] = factory()
        return channel

    def _json_channel(self, topic: str, schema_key: str) -> Any:
        import foxglove

        return self._channel(
            topic,
            lambda: foxglove.Channel(
                topic, schema=fmt.JSON_SCHEMAS[schema_key], context=self._context
            ),
        )

    def _write_json(self, topic: str, schema_key: str, data: Any, time: float) -> None:
        self._json_channel(topic, schema_key).log(fmt.dumps(data), log_time=fmt.to_ns(time))

    def _raw_float_image(self, topic: str, image: np.ndarray, stamp: Any, frame_id: str) -> Any:
        from foxglove import channels, messages

        height, width = image.shape
        channel = self._channel(
            topic, lambda: channels.RawImageChannel(topic, context=self._context)
        )
        msg = messages.RawImage(
            timestamp=stamp,
            frame_id=frame_id,
            width=width,
            height=height,
            encoding="32FC1",
            step=width * 4,
            data=np.ascontiguousarray(image, dtype="<f4").tobytes(),
        )
        return channel, msg

    def _write_frame(self, frame: Frame) -> None:
        from foxglove import channels, messages

        log_time = fmt.to_ns(frame.acquisition_time_local)
        stamp = messages.Timestamp(sec=log_time // 1_000_000_000, nsec=log_time % 1_000_000_000)
        frame_id = frame.frame_name_image_sensor or frame.camera
        image = frame.image
        if frame.encoded is not None or image.dtype == np.uint8:
            topic = fmt.camera_topic(frame.camera, fmt.KIND_COMPRESSED)
            if frame.encoded is not None:
                encoding, data = "jpeg", frame.encoded  # as received: never re-encoded
            else:
                ok, png = cv2.imencode(".png", image)  # lossless: replay gets the same pixels
                if not ok:
                    raise ValueError(f"cannot PNG-encode a {image.shape} frame from {frame.camera}")
                encoding, data = "png", png.tobytes()
            msg: Any = messages.CompressedImage(
                timestamp=stamp, frame_id=frame_id, data=data, format=encoding
            )
            channel = self._channel(
                topic, lambda: channels.CompressedImageChannel(topic, context=self._context)
            )
        elif image.dtype == np.float32 and image.ndim == 2:
            topic, encoding = fmt.camera_topic(frame.camera, fmt.KIND_RAW), "32FC1"
            channel, msg = self._raw_float_image(topic, image, stamp, frame_id)
        else:
            raise ValueError(f"cannot record a {image.dtype} {image.shape} frame")
        # Meta and depth first: a reader that has the image has them too.
        meta_topic = fmt.camera_topic(frame.camera, fmt.KIND_META)
        self._write_json(
            meta_topic, fmt.KIND_META, fmt.frame_meta(frame, topic, encoding),
            frame.acquisition_time_local,
        )
        if frame.depth_m is not None:
            depth_topic = fmt.camera_topic(frame.camera, fmt.KIND_DEPTH)
            depth_channel, depth_msg = self._raw_float_image(
                depth_topic, frame.depth_m.astype(np.float32, copy=False), stamp, frame_id
            )
            depth_channel.log(depth_msg, log_time=log_time)
        channel.log(msg, log_time=log_time)

    def _write_result(self, payload: tuple[int, float, FrameResult]) -> None:
        from foxglove import channels, messages

        step, time, result = payload
        self._write_json(
            fmt.TOPIC_DETECTIONS,
            fmt.TOPIC_DETECTIONS,
            {"step": step, "time": time, "result": fmt.result_to_dict(result)},
            time,
        )
        # Boxes on the image: the annotation carries the image's own timestamp.
        image_ns = fmt.to_ns(result.time_local)
        stamp = messages.Timestamp(sec=image_ns // 1_000_000_000, nsec=image_ns % 1_000_000_000)
        points, texts = [], []
        for s in result.sightings:
            r, g, b = _color_for(s.label)
            x1, y1, x2, y2 = (float(v) for v in s.box)
            points.append(
                messages.PointsAnnotation(
                    timestamp=stamp,
                    type=messages.PointsAnnotationType.LineLoop,
                    points=[
                        messages.Point2(x=x1, y=y1),
                        messages.Point2(x=x2, y=y1),
                        messages.Point2(x=x2, y=y2),
                        messages.Point2(x=x1, y=y2),
                    ],
                    outline_color=messages.Color(r=r, g=g, b=b, a=1.0),
                    thickness=2.0,
                )
            )
            extra = f" {s.distance_m:.1f}m" if s.distance_m is not None else ""
            texts.append(
                messages.TextAnnotation(
                    timestamp=stamp,
                    position=messages.Point2(x=x1, y=max(y1 - 2.0, 12.0)),
                    text=f"{s.label} {s.score:.2f}{extra}",
                    font_size=14.0,
                    text_color=messages.Color(r=1.0, g=1.0, b=1.0, a=1.0),
                    background_color=messages.Color(r=r, g=g, b=b, a=0.7),
                )
            )
        topic = fmt.camera_topic(result.camera, fmt.KIND_ANNOTATIONS)
        channel = self._channel(
            topic, lambda: channels.ImageAnnotationsChannel(topic, context=self._context)
        )
        channel.log(
            messages.ImageAnnotations(timestamp=stamp, points=points, texts=texts),
            log_time=image_ns,
        )

    def _write_step(self, payload: tuple[int, float, str]) -> None:
        step, time, trigger = payload
        self._write_json(
            fmt.TOPIC_STEPS, fmt.TOPIC_STEPS, {"step": step, "time": time, "trigger": trigger}, time
        )

    def _write_status(self, payload: tuple[float, Any, Any]) -> None:
        time, status, error = payload
        self._write_json(
            fmt.TOPIC_STATUS,
            fmt.TOPIC_STATUS,
            {"time": time, "status": status, "error": error},
            time,
        )

    def _write_event(self, payload: tuple[str, float, Any]) -> None:
        kind, time, data = payload
        self._write_json(
            fmt.TOPIC_EVENTS, fmt.TOPIC_EVENTS, {"kind": kind, "time": time, "data": data}, time
        )

    def _write_command(self, payload: tuple[float, dict[str, Any], str]) -> None:
        time, command, outcome = payload
        self._write_json(
            fmt.TOPIC_COMMANDS,
            fmt.TOPIC_COMMANDS,
            {"time": time, "command": command, "outcome": outcome},
            time,
        )


class RecordingObserver(PipelineObserver):
    """Feeds a `Recorder` from the pipeline's observer seam (`spot-agent run --record`)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def frame_taken(self, frame: Frame) -> None:
        self.recorder.record_frame(frame)

    def result_observed(self, now: float, result: FrameResult) -> None:
        self.recorder.record_observed(result, now)

    def control_step(self, now: float, trigger: str) -> None:
        self.recorder.record_step(now, trigger)

    def robot_status(
        self, now: float, status: RobotStatus | None, error: BaseException | None
    ) -> None:
        self.recorder.record_status(now, status, error)

    def command(self, now: float, command: MotionCommand, outcome: str) -> None:
        self.recorder.record_command(now, command, outcome)

    def event(self, event: AgentEvent) -> None:
        data = dict(event.data)
        if event.message:
            data.setdefault("message", event.message)
        data.setdefault("source", event.source)
        self.recorder.record_event(event.kind, event.time, data)
