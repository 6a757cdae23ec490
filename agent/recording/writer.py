"""`Recorder`: writes what the agent saw, decided and did to MCAP files Foxglove can open.

The pipeline calls the `record_*` methods from its event loop; they only copy a reference into a
bounded queue and return at once. A writer thread turns queue items into Foxglove messages
(`agent.recording.foxglove`) and writes them to rotating MCAP segments (`agent.recording.segments`:
`run.mcap`, `run-001.mcap`, ... each complete on its own, under a total cap). When the queue is
full the item is dropped and counted, never waited for: a slow disk must not slow the robot
down. Frames are dropped first (they are refused while the queue is more than
`frame_fill_limit` full), so the small records that replay needs to reproduce commands keep room.

When writing fails for good (disk full, quota, file size limit) the recorder logs it once,
stops recording and says why in `failure`; the agent and the robot carry on, and the run exits
non-zero at its end (`spot-agent run`).

Frames are stored as they were received: JPEG bytes untouched in `foxglove.CompressedImage`;
frames that came without JPEG bytes as lossless PNG (grey/BGR) or `foxglove.RawImage` 32FC1
(depth, metres). A frame's log time is its local acquisition time; everything else is logged at
the pipeline-clock time it happened, so replaying a recording writes the same times again.
Engine steps are numbered from 0 in each segment, so each replays on its own.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.core.events import AgentEvent
from agent.core.observers import OperatorInput, PipelineObserver
from agent.core.seams import RobotStatus
from agent.recording import format as fmt
from agent.recording import foxglove as fm
from agent.recording.segments import (
    McapSegments,
    RecordingConfig,
    SchemaSpec,
    SegmentsFailed,
    existing_segments,
    free_space_mb,
    segment_path,
)
from agent.recording.stats import RecorderStats
from behaviors.commands import MotionCommand, command_to_dict
from perception.detection import FrameResult
from perception.frame import Frame

log = logging.getLogger(__name__)

_STOP = object()


class RecordingError(RuntimeError):
    """The recording file cannot be created."""


def check_recording_path(path: Path) -> None:
    """Raise `RecordingError` unless a recording (all its segments) can be created at `path`."""
    existing = existing_segments(path)
    if existing:
        raise RecordingError(f"{existing[0]}: already exists (refusing to overwrite it)")
    if not path.parent.is_dir():
        raise RecordingError(f"{path}: directory {path.parent} does not exist")


@dataclass(frozen=True)
class _Item:
    kind: str
    payload: Any


class Recorder:
    """Bounded, non-blocking MCAP recorder.

    `queue_size` bounds the items waiting for the writer (a frame is one item). `chunk_size` is
    the MCAP chunk size: at most this much (the chunk being filled) is lost if the process dies
    without `close()`. `limits`: segment size and age, total cap (`RecordingConfig`).
    `metadata` is written first in every segment as given: build it with
    `agent.recording.metadata.recording_metadata`, which keeps machine paths out.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        queue_size: int = 256,
        frame_fill_limit: float = 0.75,
        chunk_size: int = 256 * 1024,
        compression: str | None = "zstd",
        metadata: dict[str, str] | None = None,
        limits: RecordingConfig | None = None,
    ) -> None:
        self.path = Path(path)
        check_recording_path(self.path)
        if compression not in ("zstd", "lz4", None):
            raise ValueError(f"compression must be zstd, lz4 or None, not {compression!r}")
        self.limits = limits or RecordingConfig()
        self._header = {"format_version": str(fmt.FORMAT_VERSION), **(metadata or {})}
        self._queue: queue.Queue[_Item | object] = queue.Queue(maxsize=queue_size)
        self._frame_limit = max(1, int(queue_size * frame_fill_limit))
        self._stats = RecorderStats()
        self._stats_lock = threading.Lock()
        self._step = 0
        self._closed = False
        self.failure: str | None = None  # why recording stopped early (disk full...), if it did
        # Writer-thread state: where the segment being written starts.
        self._segment_start = RecorderStats()
        self._segment_first_step = 0
        self._steps_handled = 0  # 1 + the last engine step the writer handled
        self._last_ns = 0
        self._writer_done = False
        self._files = McapSegments(
            self.path, self.limits, self._segment_header, self._segment_closing,
            chunk_size, compression,
        )
        try:
            self._files.open_next()
        except OSError as exc:
            raise RecordingError(f"{self.path}: cannot create recording: {exc}") from exc
        self._warn_if_short_of_space()
        self._thread = threading.Thread(target=self._run, name="mcap-recorder", daemon=True)
        self._thread.start()

    @property
    def failed(self) -> bool:
        """Recording stopped early for good (`failure` says why): the run should exit non-zero."""
        return self.failure is not None

    @property
    def segments(self) -> list[Path]:
        """The recording's files on disk, oldest first."""
        return self._files.segments

    def _warn_if_short_of_space(self) -> None:
        free = free_space_mb(self.path.parent)
        if free < self.limits.max_total_mb:
            log.warning(
                "recording: %.0f MiB free in %s, less than the recording cap (%.0f MiB): "
                "recording will stop if the disk fills", free, self.path.parent,
                self.limits.max_total_mb, extra={"event": "recording_low_space"},
            )

    # --- producer side (pipeline thread): never blocks ------------------------------------

    def _offer(self, kind: str, payload: Any, limit: int | None = None) -> bool:
        if self._closed:
            return False
        if self.failure is not None:
            with self._stats_lock:
                self._stats.refused_after_failure += 1
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

    def record_operator(self, time: float, op: OperatorInput) -> bool:
        """An operator's input as the engine took it (pipeline clock): an engine input too."""
        return self._offer("operator", (self._next_step(), time, op))

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
            try:  # shutdown may wait for the writer, but not forever
                self._queue.put(_STOP, timeout=timeout_s)
            except queue.Full:
                pass
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("recorder: writer did not finish within %.0f s", timeout_s)
            else:
                self._finish()
            stats = self.stats()
            nothing = stats.written_total == 0 and stats.dropped_total == 0
            if nothing and self.failure is None and not keep_empty and self._files.index == 0:
                self.path.unlink(missing_ok=True)
                log.info("recorder: nothing was recorded; removed %s", self.path)
        return self.stats()

    def _finish(self) -> None:
        self._writer_done = True
        try:
            self._files.close()
        except SegmentsFailed:
            self._failed()

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
            if self.failure is not None:  # stopped: what was queued is not written
                with self._stats_lock:
                    self._stats.refused_after_failure += 1
                continue
            try:
                self._files.rotate_if_due()  # between items: a frame's messages stay together
                getattr(self, f"_write_{item.kind}")(item.payload)
            except SegmentsFailed:
                self._failed()
                continue
            except Exception as exc:  # one bad item must not stop the recording
                with self._stats_lock:
                    self._stats.write_errors += 1
                    self._stats.last_error = f"{item.kind}: {exc}"
                log.warning("recorder: could not write a %s: %s", item.kind, exc)
                continue
            with self._stats_lock:
                self._stats.written[item.kind] = self._stats.written.get(item.kind, 0) + 1

    def _failed(self) -> None:
        """Writing failed for good: say so once, clearly, and stop recording (not the robot)."""
        if self.failure is not None:
            return
        self.failure = self._files.failure or "write error"
        kept = [f"{p.name} (complete)" for p in self._files.segments]
        kept.append(f"{self._files.current.name} (cut short: replayable up to the failure)")
        log.error(
            "recording stopped: %s. The agent keeps running; the run will exit non-zero. "
            "On disk: %s", self.failure, ", ".join(kept),
            extra={"event": "recording_failed", "reason": self.failure},
        )

    def _segment_header(self, index: int) -> dict[str, dict[str, str]]:
        """Metadata written first in segment `index`: the run's header, where the segment is."""
        header = dict(self._header)
        if index > 0:
            self._segment_start = self._stats_now(self._steps_handled)
            self._segment_first_step = self._steps_handled
            header["started_local"] = repr(self._last_ns / 1e9)  # where the last one ended
        header.update(
            segment=str(index),
            first_step=str(self._segment_first_step),
            previous_segment=segment_path(self.path, index - 1).name if index > 0 else "",
        )
        return {fmt.RECORDING_METADATA: header}

    def _segment_closing(self, index: int) -> dict[str, dict[str, str]]:
        """Metadata written last in a segment: its own share of the stats."""
        # The last segment owns every step numbered so far; an earlier one those it wrote.
        steps = self._step if self._writer_done else self._steps_handled
        share = self._stats_now(steps).since(self._segment_start)
        return {
            fmt.RECORDING_STATS_METADATA: {k: json.dumps(v) for k, v in share.as_dict().items()}
        }

    def _stats_now(self, engine_steps: int) -> RecorderStats:
        return dataclasses.replace(self.stats(), engine_steps=engine_steps)

    def _emit(self, topic: str, schema: SchemaSpec, data: bytes, log_time: int) -> None:
        self._last_ns = max(self._last_ns, log_time)
        self._files.write(topic, schema, data, log_time)

    def _write_json(self, topic: str, schema_key: str, data: Any, time: float) -> None:
        self._emit(topic, SchemaSpec.of_json(fmt.JSON_SCHEMAS[schema_key]), fmt.dumps(data),
                   fmt.to_ns(time))

    def _log(self, topic: str, message: Any, log_time: int) -> None:
        """A Foxglove message (`foxglove.messages.*`), protobuf-encoded with its schema."""
        self._emit(topic, SchemaSpec.of_message(message), message.encode(), log_time)

    def _local_step(self, step: int) -> int:
        """An engine step as numbered in the segment being written (from 0)."""
        self._steps_handled = max(self._steps_handled, step + 1)
        return step - self._segment_first_step

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
            {"step": self._local_step(step), "time": time, "result": fmt.result_to_dict(result)},
            time,
        )
        # Boxes on the image and sightings in 3D carry the image's own time.
        for topic, message in fm.result_messages(result):
            self._log(topic, message, fmt.to_ns(result.time_local))

    def _write_step(self, payload: tuple[int, float, str]) -> None:
        step, time, trigger = payload
        data = {"step": self._local_step(step), "time": time, "trigger": trigger}
        self._write_json(fmt.TOPIC_STEPS, fmt.TOPIC_STEPS, data, time)

    def _write_operator(self, payload: tuple[int, float, OperatorInput]) -> None:
        step, time, op = payload
        data = {"step": self._local_step(step), "time": time, "kind": op.kind, "name": op.name,
                "params": fmt.jsonable(op.params), "reason": op.reason}
        self._write_json(fmt.TOPIC_OPERATOR, fmt.TOPIC_OPERATOR, data, time)

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

    def operator_input(self, now: float, op: OperatorInput) -> None:
        self.recorder.record_operator(now, op)

    def robot_status(
        self, now: float, status: RobotStatus | None, error: BaseException | None
    ) -> None:
        self.recorder.record_status(now, status, error)

    def command(self, now: float, command: MotionCommand, outcome: str) -> None:
        self.recorder.record_command(now, command, outcome)

    def event(self, event: AgentEvent) -> None:
        self.recorder.record_event(event.kind, event.time, fmt.agent_event_data(event))
