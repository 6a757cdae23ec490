"""`spot-agent replay PATH`: the agent's pipeline on a recording, a video or a folder of images.

The same `Pipeline`, `Perceiver` and `CueEngine` as `spot-agent run`, with a replay source and a
dry-run robot that records the commands it would have sent. Determinism (same input and config
-> same commands, however fast the machine) comes from `agent.replay.drive`: one frame at a
time, virtual time taken from the input, and for recordings of live runs the live run's own
observation and control-step times and robot statuses.

A recording replays with the configuration embedded in it (`agent.replay.config`); `--config`
and `--rules` override it, and the summary says so.

Exit codes: 0 replayed (what was lost from the input is reported), 1 nothing was readable, 2 a bad
or missing configuration (or a model other than the recorded one), 6 the replayed commands
differ from the live run's (the first difference is printed).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NoReturn

import typer

import configs
from agent.core.observers import PipelineObserver
from agent.recording.metadata import recording_metadata
from agent.replay.compare import compare_commands
from agent.replay.result import ReplayResult, ReplaySummary
from agent.replay.summary import render_summary

Mode = Literal["auto", "recorded-run", "frames"]

EXIT_OK = 0
EXIT_NOTHING_READABLE = 1
EXIT_CONFIG = 2
EXIT_COMMANDS_DIFFER = 6  # distinct from `run`'s 3-5, so scripts can tell a mismatch from a failure


class AnnotatedVideoWriter(PipelineObserver):
    """Writes each processed frame with its boxes to a video (`per_camera`: one file each)."""

    def __init__(self, path: Path, fps: float, per_camera: bool = False) -> None:
        self.path = path
        self.fps = fps
        self.per_camera = per_camera
        self._frames: dict[tuple[str, int], Any] = {}
        self._writers: dict[str, Any] = {}
        self.paths: list[Path] = []

    def _writer_for(self, camera: str, size: tuple[int, int], multi: bool) -> Any:
        import cv2

        writer = self._writers.get(camera)
        if writer is None:
            # One camera: the path asked for; more: one file per camera (a camera that shows up
            # late in a recording without a summary gets its own file too).
            plain = not multi and not self._writers
            path = self.path if plain else self.path.with_name(
                f"{self.path.stem}_{camera}{self.path.suffix}"
            )
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
            if not writer.isOpened():
                raise OSError(f"{path}: cannot write a video there")
            self._writers[camera] = writer
            self.paths.append(path)
        return writer

    def frame_taken(self, frame: Any) -> None:
        if not frame.is_depth:
            self._frames[(frame.camera, frame.seq)] = frame

    def result_observed(self, now: float, result: Any) -> None:
        import cv2
        import numpy as np

        frame = self._frames.pop((result.camera, result.seq), None)
        for key in [k for k in self._frames if k[0] == result.camera and k[1] < result.seq]:
            del self._frames[key]  # taken but never observed (stale)
        if frame is None:
            return
        image = frame.image
        canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
        scale = frame.image_scale
        for s in result.sightings:
            x1, y1, x2, y2 = (int(round(v * scale)) for v in s.box)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 0, 255), 2)
            cv2.putText(canvas, f"{s.label} {s.score:.2f}", (x1, max(12, y1 - 4)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 1, cv2.LINE_AA)
        height, width = canvas.shape[:2]
        writer = self._writer_for(result.camera, (width, height), multi=self.per_camera)
        writer.write(np.ascontiguousarray(canvas))

    def close(self) -> None:
        for writer in self._writers.values():
            writer.release()
        self._writers.clear()


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
) -> ReplayResult:
    """Run `config`'s pipeline on `path` (`rules`: already loaded rules instead of
    `config.rules`). Raises `ReplayInputError` when nothing can be read."""
    from agent.replay.drive import DetectAhead, Pacer
    from agent.replay.sources import open_replay_source
    from behaviors.config import load_rules

    rules = rules if rules is not None else load_rules(config.rules)
    # Offline, every core detects: one single-threaded interpreter per core, frames spread over
    # them. XNNPACK splits work over threads by output tiles, so a result does not depend on
    # the thread count (tests/test_replay_drive.py checks it bit for bit on the shipped model):
    # the live config's results, at the machine's full throughput.
    workers = max(1, os.cpu_count() or 1)
    inner = open_replay_source(path, fps=fps, camera=camera, prefetch=2 * workers + 2)
    make_perceiver = perceiver_factory or _perceiver_factory(
        config.detector.model_copy(update={"num_threads": 1})
    )
    ahead = DetectAhead(make_perceiver, workers=workers)
    try:
        await asyncio.to_thread(ahead.warm)  # the model loads and verifies before any frame
        return await _run(
            path, config, rules, mode, inner, ahead, Pacer(speed), fps, out_mcap, out_video,
            observers or [],
        )
    finally:
        ahead.close()
        await inner.close()


def _perceiver_factory(detector_config: Any) -> Callable[[], Callable[[Any], Any]]:
    """One `Perceiver` per detect-ahead worker thread (interpreters are not thread-safe)."""
    from perception.perceiver import Perceiver

    def make() -> Callable[[Any], Any]:
        return Perceiver.from_config(detector_config).process

    return make


async def _run(
    path: str | Path,
    config: Any,
    rules: Any,
    mode: Mode,
    inner: Any,
    ahead: Any,
    pacer: Any,
    fps: float | None,
    out_mcap: Path | None,
    out_video: Path | None,
    observers: list[PipelineObserver],
) -> ReplayResult:
    from agent.core.clock import FrameClock
    from agent.core.events import EventLog
    from agent.core.pipeline import Pipeline
    from agent.recording.metadata import recording_header
    from agent.recording.writer import Recorder, RecordingObserver
    from agent.replay.drive import RecordedRunSource, ReplayRobot, ScriptedClock, TimedFrameSource
    from agent.replay.mcap import McapFrameSource
    from agent.replay.reading import ReplayInputError
    from behaviors.engine import CueEngine

    # One frame at a time: the pipeline asks for the next frame once the previous one is
    # observed, so results reach the engine in order and at their recorded times.
    safety = config.safety.model_copy(update={"detect_workers": 1})
    header = (recording_header(inner.recording.path) or {}) if isinstance(inner, McapFrameSource) else {}
    # Recordings made by `spot-agent run --record` carry the pipeline's engine inputs.
    live_mode = isinstance(inner, McapFrameSource) and (
        mode == "recorded-run" or (mode == "auto" and header.get("pipeline_inputs") == "1")
    )
    source: Any
    if live_mode:
        clock: Any = ScriptedClock(start=float(header.get("started_local", "0")))
        robot = ReplayRobot(clock)
        source = RecordedRunSource(inner.recording, clock, robot, pacer, detect_ahead=ahead)
        resolved_mode = "recorded-run"
        observers = [source.observer(), *observers]
    else:
        inner.on_read = ahead.submit
        # The clock starts at the first frame's time: peek at it.
        frames_iter = inner.frames().__aiter__()
        try:
            first = await frames_iter.__anext__()
        except StopAsyncIteration:
            raise ReplayInputError(_nothing_readable(inner.report)) from None
        clock = FrameClock(start=first.acquisition_time_local)
        robot = ReplayRobot(clock)
        source = TimedFrameSource(_Prepended(inner, first, frames_iter), clock, pacer)
        resolved_mode = "frames"

    summary = ReplaySummary()
    all_observers: list[PipelineObserver] = [summary, *observers]
    recorder: Recorder | None = None
    video: AnnotatedVideoWriter | None = None
    if out_mcap is not None:
        # The cameras this replay has (not the config's): the recording's, or the video's/folder's.
        cameras = list(inner.cameras) or [c for c in header.get("cameras", "").split(",") if c]
        recorder = Recorder(out_mcap, metadata=recording_metadata(
            config, started_local=clock.now(), cameras=cameras, replay_of=path,
            mode=resolved_mode))
        all_observers.append(RecordingObserver(recorder))
    if out_video is not None:
        video = AnnotatedVideoWriter(out_video, fps or 15.0, per_camera=len(inner.cameras) > 1)
        all_observers.append(video)
    pipeline = Pipeline(
        source, ahead.perceiver_factory(), CueEngine(rules, stop=config.safety.stop_budget()), robot,
        safety, clock=clock,
        events=EventLog(), observers=all_observers,
    )
    started = time.perf_counter()
    try:
        report = await pipeline.run()
    finally:
        wall = time.perf_counter() - started
        if recorder is not None:
            recorder.close()
        if video is not None:
            video.close()
    read = inner.report
    if not read.readable:
        raise ReplayInputError(_nothing_readable(read))
    replayed = [(r.time, r.command) for r in robot.recorded]
    result = ReplayResult(
        resolved_mode, str(path), read, report, summary, replayed, wall,
        out_paths=[p for p in [out_mcap] if p is not None] + (video.paths if video else []),
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


def _nothing_readable(read: Any) -> str:
    detail = "; ".join(f"{p.where}: {p.what}" for p in read.problems[:5])
    return f"{read.source}: nothing readable" + (f" ({detail})" if detail else "")


class _Prepended:
    """A replay source whose first frame was already read (to start the clock at its time)."""

    def __init__(self, inner: Any, first: Any, rest: Any) -> None:
        self.inner, self.first, self.rest = inner, first, rest
        self.report = inner.report

    @property
    def cameras(self) -> list[str]:
        return list(self.inner.cameras)

    async def frames(self) -> Any:
        yield self.first
        async for frame in self.rest:
            yield frame

    async def close(self) -> None:
        await self.inner.close()


# ----------------------------------------------------------------------------------- CLI
def replay_command(
    path: Path = typer.Argument(..., help="An MCAP recording, a video file or a folder of images."),
    config: str | None = typer.Option(
        None, "--config", "-c",
        help="Agent settings instead of the ones recorded in the file: a YAML file, or the name "
        f"of a shipped one ({', '.join(configs.shipped_names(configs.AGENT_CONFIGS))}). Default: "
        "the recorded configuration; for videos, folders and old recordings, the shipped agent.",
    ),
    rules: str | None = typer.Option(
        None, "--rules", help="Cue rules instead of the recorded (or the config's): a YAML file, "
        f"or the name of a shipped one ({', '.join(configs.shipped_names(configs.RULES))})."
    ),
    fast: bool = typer.Option(False, "--fast", help="As fast as the detector allows (the default)."),
    speed: float | None = typer.Option(
        None, "--speed", min=0.01, help="Play at this multiple of real time (1 = as recorded)."
    ),
    mode: str = typer.Option(
        "auto", "--mode",
        help="recorded-run: reproduce a live run's commands (recordings of `run --record`); "
        "frames: every frame in order, ticks on frame time; auto: recorded-run when possible.",
    ),
    fps: float | None = typer.Option(None, "--fps", help="Frame rate of an image folder (default 10) or a video."),
    out_mcap: Path | None = typer.Option(None, "--out-mcap", help="Record the replay (frames, new detections, commands)."),
    out_video: Path | None = typer.Option(None, "--out-video", help="Write the frames with their boxes to a video."),
    log_level: str = typer.Option("warning", "--log-level", help="debug, info, warning or error."),
) -> None:
    """Replay what a robot saw through the pipeline with a dry-run robot, and summarise.

    A recording replays with the configuration and rules recorded in it; --config / --rules
    replace them (the summary says so). Exit codes: 0 replayed (input losses are listed),
    1 nothing readable, 2 bad configuration or a model other than the recorded one,
    6 the replayed commands differ from the live run's (the first difference is printed).
    """
    from rich.console import Console

    from agent.logs import setup_logging
    from agent.recording.metadata import recording_header
    from agent.recording.writer import RecordingError
    from agent.replay.config import load_replay_rules, resolve_replay_config
    from agent.replay.reading import ReplayInputError
    from configs.loading import ConfigError

    setup_logging(log_level.upper())
    if fast and speed is not None:
        _fail("--fast and --speed are exclusive", EXIT_CONFIG)
    if mode not in ("auto", "recorded-run", "frames"):
        _fail(f"--mode must be auto, recorded-run or frames, not {mode}", EXIT_CONFIG)
    try:
        header = recording_header(path)
        chosen = resolve_replay_config(path.name, header, config, rules)
    except ReplayInputError as exc:
        _fail(str(exc), EXIT_NOTHING_READABLE)
    except (ConfigError, ValueError) as exc:
        _fail(str(exc), EXIT_CONFIG)
    try:
        for warning in chosen.warnings:  # before the replay starts, and again in the summary
            typer.secho(f"spot-agent replay: WARNING: {warning}", err=True, fg="red", bold=True)
        result = asyncio.run(replay(
            path, chosen.config, mode=mode, speed=speed, fps=fps, out_mcap=out_mcap,  # type: ignore[arg-type]
            out_video=out_video, rules=load_replay_rules(chosen, path.name)))
    except ReplayInputError as exc:
        _fail(str(exc), EXIT_NOTHING_READABLE)
    except (ConfigError, RecordingError, OSError) as exc:
        _fail(str(exc), EXIT_CONFIG)
    finally:
        chosen.close()
    result.config_origin, result.config_warnings = chosen.origin, chosen.warnings
    render_summary(result, Console())
    if result.comparison is not None and not result.comparison.matches:
        _fail("the replayed commands differ from the live run's: "
              f"{result.comparison.first_difference}", EXIT_COMMANDS_DIFFER)
    raise typer.Exit(EXIT_OK)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"spot-agent replay: {message}", err=True)
    raise typer.Exit(code)
