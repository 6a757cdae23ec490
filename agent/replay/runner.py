"""`replay()`: the agent's pipeline on a recording, a video or a folder of images.

The same `Pipeline`, `Perceiver` and `CueEngine` as `spot-agent run`, with a replay source and a
dry-run robot that records the commands it would have sent. Determinism (same input and config
-> same commands, however fast the machine) comes from how the source drives time: one frame
at a time, virtual time taken from the input (`agent.replay.timed`), and for recordings of live
runs the live run's own observation and control-step times and robot statuses
(`agent.replay.recorded_run`). Detection runs ahead on every core (`agent.replay.detect_ahead`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from agent.core.assembly import build_pipeline, detector_threads
from agent.core.observers import PipelineObserver
from agent.recording.metadata import recording_header, recording_metadata
from agent.recording.writer import Recorder, RecordingObserver
from agent.replay.annotated_video import AnnotatedVideoWriter
from agent.replay.compare import compare_commands
from agent.replay.detect_ahead import DetectAhead
from agent.replay.dry_run import ReplayRobot
from agent.replay.mcap import McapFrameSource
from agent.replay.reading import NoFrames, PrefetchingSource, ReplayInputError
from agent.replay.recorded_run import RecordedRunSource
from agent.replay.result import ReplayResult, ReplaySummary
from agent.replay.sources import open_replay_source
from agent.replay.timed import TimedFrameSource, start_timed
from agent.replay.timing import Pacer, ScriptedClock
from behaviors.config import load_rules

Mode = Literal["auto", "recorded-run", "frames"]


async def replay(
    path: str | Path,
    config: Any,
    *,
    mode: Mode = "auto",
    speed: float | None = None,
    fps: float | None = None,
    camera: str | None = None,
    out_mcap: Path | None = None,
    out_video: Path | None = None,
    perceiver_factory: Callable[[], Callable[[Any], Any]] | None = None,
    observers: list[PipelineObserver] | None = None,
    rules: Any = None,
    detect_workers: int | None = None,
) -> ReplayResult:
    """Run `config`'s pipeline on `path` (`rules`: already loaded rules instead of
    `config.rules`; `detect_workers`: detector threads, default one per core, fewer when
    several replays share the machine). Raises `ReplayInputError` when nothing can be read."""
    rules = rules if rules is not None else load_rules(config.rules)
    # Offline, every core detects: one single-threaded interpreter per core, frames spread over
    # them. XNNPACK splits work over threads by output tiles, so a result does not depend on
    # the thread count (tests/agent/replay/test_drive.py checks it bit for bit on the shipped model):
    # the live config's results, at the machine's full throughput.
    workers = detect_workers or max(1, os.cpu_count() or 1)
    inner = open_replay_source(path, fps=fps, camera=camera, prefetch=2 * workers + 2)
    make_perceiver = perceiver_factory or detector_threads(
        config.detector.model_copy(update={"num_threads": 1})
    )
    ahead = DetectAhead(make_perceiver, workers=workers)
    try:
        await asyncio.to_thread(ahead.warm)  # the model loads and verifies before any frame
        source, robot, header = await _drive(mode, inner, ahead, Pacer(speed))
        outputs = _Outputs(
            config, path, out_mcap, out_video, fps,
            # The cameras this replay has (not the config's): the recording's, or the video's/folder's.
            cameras=list(inner.cameras) or [c for c in header.get("cameras", "").split(",") if c],
            video_per_camera=len(inner.cameras) > 1,
            started_local=source.clock.now(),
            mode="recorded-run" if isinstance(source, RecordedRunSource) else "frames",
        )
        return await _run(path, config, rules, inner, ahead, source, robot, outputs, observers or [])
    finally:
        ahead.close()
        await inner.close()


async def _drive(
    mode: Mode, inner: PrefetchingSource, ahead: DetectAhead, pacer: Pacer
) -> tuple[RecordedRunSource | TimedFrameSource, ReplayRobot, dict[str, str]]:
    """How the input drives the pipeline's time and robot, and the recording's header ({} for
    videos and folders)."""
    header = (recording_header(inner.recording.path) or {}) if isinstance(inner, McapFrameSource) else {}
    # Recordings made by `spot-agent run --record` carry the pipeline's engine inputs.
    live_mode = isinstance(inner, McapFrameSource) and (
        mode == "recorded-run" or (mode == "auto" and header.get("pipeline_inputs") == "1")
    )
    if live_mode:
        assert isinstance(inner, McapFrameSource)
        clock = ScriptedClock(start=float(header.get("started_local", "0")))
        robot = ReplayRobot(clock)
        return RecordedRunSource(inner.recording, clock, robot, pacer, detect_ahead=ahead), robot, header
    inner.on_read = ahead.submit
    timed = await start_timed(inner, pacer)  # the clock starts at the first frame's time
    return timed, ReplayRobot(timed.clock), header


class _Outputs:
    """What a replay writes besides its summary: a recording of it, a video with its boxes."""

    def __init__(
        self,
        config: Any,
        path: str | Path,
        out_mcap: Path | None,
        out_video: Path | None,
        fps: float | None,
        cameras: list[str],
        video_per_camera: bool,
        started_local: float,
        mode: str,
    ) -> None:
        self.observers: list[PipelineObserver] = []
        self.recorder: Recorder | None = None
        self.video: AnnotatedVideoWriter | None = None
        self.out_mcap = out_mcap
        if out_mcap is not None:
            self.recorder = Recorder(out_mcap, metadata=recording_metadata(
                config, started_local=started_local, cameras=cameras, replay_of=path, mode=mode))
            self.observers.append(RecordingObserver(self.recorder))
        if out_video is not None:
            self.video = AnnotatedVideoWriter(out_video, fps or 15.0, per_camera=video_per_camera)
            self.observers.append(self.video)

    @property
    def paths(self) -> list[Path]:
        return [p for p in [self.out_mcap] if p is not None] + (self.video.paths if self.video else [])

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        if self.video is not None:
            self.video.close()


async def _run(
    path: str | Path,
    config: Any,
    rules: Any,
    inner: PrefetchingSource,
    ahead: DetectAhead,
    source: RecordedRunSource | TimedFrameSource,
    robot: ReplayRobot,
    outputs: _Outputs,
    observers: list[PipelineObserver],
) -> ReplayResult:
    if isinstance(source, RecordedRunSource):
        observers = [source.observer(), *observers]
    summary = ReplaySummary()
    # One frame at a time (replay sources are `one_at_a_time`): the pipeline asks for the next
    # frame once the previous one is observed, so results reach the engine in order and at
    # their recorded times.
    pipeline = build_pipeline(
        config, source, robot, source.clock, rules=rules, perceiver_factory=ahead.perceiver_factory(),
        observers=[summary, *observers, *outputs.observers],
    )
    if isinstance(source, RecordedRunSource):
        source.operator_sink = pipeline.apply  # operators' inputs, given again as recorded
    started = time.perf_counter()
    try:
        report = await pipeline.run()
    finally:
        wall = time.perf_counter() - started
        outputs.close()
    read = inner.report
    if not read.readable:
        raise (NoFrames if read.complete else ReplayInputError)(read.nothing_readable())
    replayed = [(r.time, r.command) for r in robot.recorded]
    result = ReplayResult(
        "recorded-run" if isinstance(source, RecordedRunSource) else "frames", str(path), read,
        report, summary, replayed, wall, out_paths=outputs.paths,
    )
    if isinstance(source, RecordedRunSource):
        result.live = source.live
        live_sent = [
            (issued, c.command)
            for issued, c in zip(source.live.issued_at, source.live.commands)
            if c.outcome == "sent"
        ]
        result.comparison = compare_commands(live_sent, replayed, 1.0 / config.safety.tick_hz)
    return result
