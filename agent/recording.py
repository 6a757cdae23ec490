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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent import foxglove_messages as fm
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
        # No machine paths in a recording: it is read on other machines.
        header = {"format_version": str(fmt.FORMAT_VERSION), **fmt.portable_metadata(metadata or {})}
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

    def _log(self, topic: str, message: Any, log_time: int) -> None:
        """A Foxglove message (`foxglove.messages.*`) on its topic's channel."""
        from foxglove import channels

        channel = self._channel(
            topic,
            lambda: getattr(channels, f"{type(message).__name__}Channel")(
                topic, context=self._context
            ),
        )
        channel.log(message, log_time=log_time)

    def _write_frame(self, frame: Frame) -> None:
        log_time = fmt.to_ns(frame.acquisition_time_local)
        topic, encoding, image = fm.image_message(frame, lossless=True)
        # Meta, depth, transforms and calibration first: a reader that has the image has them.
        self._write_json(
            fmt.camera_topic(frame.camera, fmt.KIND_META),
            fmt.KIND_META,
            fmt.frame_meta(frame, topic, encoding),
            frame.acquisition_time_local,
        )
        if frame.depth_m is not None:
            depth = fm.raw_float_image(
                frame.depth_m.astype(np.float32, copy=False),
                frame.acquisition_time_local,
                fmt.image_frame_id(frame),
            )
            self._log(fmt.camera_topic(frame.camera, fmt.KIND_DEPTH), depth, log_time)
        for context_topic, message in fm.frame_context_messages(frame):
            self._log(context_topic, message, log_time)
        self._log(topic, image, log_time)

    def _write_result(self, payload: tuple[int, float, FrameResult]) -> None:
        step, time, result = payload
        self._write_json(
            fmt.TOPIC_DETECTIONS,
            fmt.TOPIC_DETECTIONS,
            {"step": step, "time": time, "result": fmt.result_to_dict(result)},
            time,
        )
        # Boxes on the image and sightings in 3D carry the image's own time.
        for topic, message in fm.result_messages(result):
            self._log(topic, message, fmt.to_ns(result.time_local))

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
            fmt.TOPIC_EVENTS, fmt.TOPIC_EVENTS, fmt.event_record(kind, time, data), time
        )

    def _write_command(self, payload: tuple[float, dict[str, Any], str]) -> None:
        time, command, outcome = payload
        self._write_json(
            fmt.TOPIC_COMMANDS, fmt.TOPIC_COMMANDS, fmt.command_record(time, command, outcome), time
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
        self.recorder.record_event(event.kind, event.time, fmt.agent_event_data(event))
