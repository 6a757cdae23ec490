"""`spot-agent replay PATH`: the agent's pipeline on a recording, a video or a folder of images.

The same `Pipeline`, `Perceiver` and `CueEngine` as `spot-agent run`, with a replay source and a
dry-run robot that records the commands it would have sent. Determinism (same input and config
-> same commands, however fast the machine) comes from `agent.replay_drive`: one frame at a
time, virtual time taken from the input, and for recordings of live runs the live run's own
observation and control-step times and robot statuses.

Exit code: 0 when something was readable (what was lost is reported), 1 when nothing was, 2 for
a bad config.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import typer

import configs
from agent.observers import PipelineObserver

Mode = Literal["auto", "recorded-run", "frames"]

EXIT_OK = 0
EXIT_NOTHING_READABLE = 1
EXIT_CONFIG = 2


class ReplaySummary(PipelineObserver):
    """Counts what the replayed pipeline did, for the summary table."""

    def __init__(self) -> None:
        self.frames_processed = 0
        self.per_camera: Counter[str] = Counter()
        self.per_class: Counter[str] = Counter()
        self.events: list[Any] = []  # AgentEvent
        self.commands: list[tuple[float, Any, str]] = []
        self.refused = 0
        self.first_result_wall: float | None = None  # perf_counter at the first / last result
        self.last_result_wall: float | None = None

    @property
    def steady_frames_per_s(self) -> float:
        """Results per second between the first and the last (start-up and shutdown excluded)."""
        if self.first_result_wall is None or self.last_result_wall is None:
            return 0.0
        span = self.last_result_wall - self.first_result_wall
        return (self.frames_processed - 1) / span if span > 0 else 0.0

    def result_observed(self, now: float, result: Any) -> None:
        wall = time.perf_counter()
        self.first_result_wall = self.first_result_wall or wall
        self.last_result_wall = wall
        self.frames_processed += 1
        self.per_camera[result.camera] += 1
        for sighting in result.sightings:
            self.per_class[sighting.label] += 1

    def command(self, now: float, command: Any, outcome: str) -> None:
        self.commands.append((now, command, outcome))
        if outcome != "sent":
            self.refused += 1

    def event(self, event: Any) -> None:
        self.events.append(event)


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


@dataclass
class CommandComparison:
    """How a replay's commands compare with the live run's."""

    live: int
    replayed: int
    same_kinds_in_order: bool
    max_param_diff: float
    max_time_diff_s: float
    first_difference: str = ""

    @property
    def identical(self) -> bool:
        return self.same_kinds_in_order and self.max_param_diff == 0.0 and self.max_time_diff_s == 0.0


def compare_commands(
    live: list[tuple[float, Any]], replayed: list[tuple[float, Any]]
) -> CommandComparison:
    """Live vs replayed (time, command) lists: kinds in order, largest parameter difference."""
    from behaviors.commands import command_to_dict

    same = [c.kind for _, c in live] == [c.kind for _, c in replayed]
    max_param, max_time, first = 0.0, 0.0, ""
    for i, ((t_live, c_live), (t_rep, c_rep)) in enumerate(zip(live, replayed)):
        d_live, d_rep = command_to_dict(c_live), command_to_dict(c_rep)
        if d_live.get("kind") != d_rep.get("kind"):
            first = first or f"#{i}: live {d_live} vs replay {d_rep}"
            continue
        max_time = max(max_time, abs(t_live - t_rep))
        for key, value in d_live.items():
            other = d_rep.get(key)
            if isinstance(value, (int, float)) and isinstance(other, (int, float)):
                max_param = max(max_param, abs(float(value) - float(other)))
            elif value != other:
                first = first or f"#{i}: {key} live {value!r} vs replay {other!r}"
                max_param = math.inf
    if len(live) != len(replayed):
        first = first or f"live sent {len(live)} commands, replay {len(replayed)}"
    return CommandComparison(len(live), len(replayed), same, max_param, max_time, first)


@dataclass
class ReplayResult:
    mode: str
    source: str
    read: Any  # ReadReport
    report: Any  # PipelineReport
    summary: ReplaySummary
    commands: list[tuple[float, Any]]  # what the dry-run robot would have been sent
    wall_s: float
    live: Any = None  # LiveRun, for recordings of live runs
    comparison: CommandComparison | None = None
    out_paths: list[Path] = field(default_factory=list)

    @property
    def frames_per_s(self) -> float:
        return self.summary.frames_processed / self.wall_s if self.wall_s > 0 else 0.0


def _recording_header(recording: Any) -> dict[str, str]:
    """The metadata the recorder wrote first (readable even when the file was cut short)."""
    from agent import recording_format as fmt
    from agent.mcap_salvage import ScanResult, scan_messages

    scan = ScanResult()
    for _ in scan_messages(recording.path, scan):  # metadata comes first; one message is plenty
        break
    return scan.metadata.get(fmt.RECORDING_METADATA, {})


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
) -> ReplayResult:
    """Run `config`'s pipeline on `path`. Raises `ReplayInputError` when nothing can be read."""
    from agent.replay_drive import DetectAhead, Pacer
    from agent.replay_sources import open_replay_source
    from agent.run import perceiver_factory as make_perceiver_factory
    from behaviors.config import load_rules

    rules = load_rules(config.rules)
    # Offline, every core detects: one single-threaded interpreter per core, frames spread over
    # them. XNNPACK splits work over threads by output tiles, so a result does not depend on
    # the thread count (tests/test_replay_drive.py checks it bit for bit on the shipped model):
    # the live config's results, at the machine's full throughput.
    workers = max(1, os.cpu_count() or 1)
    inner = open_replay_source(path, fps=fps, camera=camera, prefetch=2 * workers + 2)
    make_perceiver = perceiver_factory or make_perceiver_factory(
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
    from agent.clock import FrameClock
    from agent.events import EventLog
    from agent.pipeline import Pipeline
    from agent.recording import Recorder, RecordingObserver
    from agent.replay_drive import RecordedRunSource, ReplayRobot, ScriptedClock, TimedFrameSource
    from agent.replay_sources import McapFrameSource, ReplayInputError
    from behaviors.engine import CueEngine

    # One frame at a time: the pipeline asks for the next frame once the previous one is
    # observed, so results reach the engine in order and at their recorded times.
    safety = config.safety.model_copy(update={"detect_workers": 1})
    header = _recording_header(inner.recording) if isinstance(inner, McapFrameSource) else {}
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
        recorder = Recorder(out_mcap, metadata=recording_metadata(
            config, replay_of=str(path), mode=resolved_mode, started_local=clock.now()))
        all_observers.append(RecordingObserver(recorder))
    if out_video is not None:
        video = AnnotatedVideoWriter(out_video, fps or 15.0, per_camera=len(inner.cameras) > 1)
        all_observers.append(video)
    pipeline = Pipeline(
        source, ahead.perceiver_factory(), CueEngine(rules), robot, safety, clock=clock,
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
        result.comparison = compare_commands(live_sent, replayed)
    return result


def recording_metadata(config: Any, started_local: float, **extra: str) -> dict[str, str]:
    """What a recording of the pipeline says about itself (MCAP metadata, written first)."""
    return {
        "pipeline_inputs": "1",  # engine inputs recorded: `replay` can reproduce the commands
        "started_local": repr(started_local),
        "rules": str(config.rules),
        "detector_model": str(config.detector.model_path),
        "tick_hz": repr(config.safety.tick_hz),
        "cameras": ",".join(config.cameras.sources),
        **extra,
    }


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


# ------------------------------------------------------------------------------- summary
def render_summary(result: ReplayResult, console: Any = None, timeline_rows: int = 40) -> None:
    """The replay summary as rich tables: input, counts, commands, timeline, losses."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    s, read = result.summary, result.read
    overview = Table(title=f"Replay of {result.source}", show_header=False, title_justify="left")
    overview.add_column("what")
    overview.add_column("value")
    overview.add_row("mode", result.mode)
    overview.add_row("frames read", str(read.frames))
    overview.add_row("frames processed", f"{s.frames_processed} ({_per_camera(s.per_camera)})")
    overview.add_row(
        "replay speed",
        f"{s.steady_frames_per_s:.1f} frames/s ({result.wall_s:.2f} s in all, with start-up)",
    )
    cue_firings = sum(1 for e in s.events if e.kind == "cue_fired")
    rules_fired = sum(1 for e in s.events if e.kind == "rule_fired")
    overview.add_row("cue firings", f"{cue_firings} cues appeared, {rules_fired} rules fired")
    kinds = Counter(c.kind for _, c in result.commands)
    sent = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "none"
    overview.add_row("commands (dry run)", sent + (f"; {s.refused} refused" if s.refused else ""))
    if result.comparison is not None:
        c = result.comparison
        if not c.same_kinds_in_order:
            verdict = f"DIFFERENT: {c.first_difference}"
        else:
            params = "identical parameters" if c.max_param_diff == 0.0 else (
                f"parameters within {c.max_param_diff:.3g}")
            verdict = (f"same commands in the same order, {params}; times within "
                       f"{c.max_time_diff_s * 1000:.1f} ms")
        overview.add_row("vs live run", f"{c.live} live, {c.replayed} replayed: {verdict}")
    if result.live is not None and result.live.unreproducible:
        shown = ", ".join(result.live.unreproducible[:5])
        more = len(result.live.unreproducible) - 5
        overview.add_row("not replayable", shown + (f" and {more} more" if more > 0 else "")
                         + " (operator input is not in the recording)")
    overview.add_row("input complete", "yes" if read.complete else "no (see losses)")
    for out in result.out_paths:
        overview.add_row("wrote", str(out))
    console.print(overview)

    classes = Table(title="Detections per class", title_justify="left", min_width=24)
    classes.add_column("class")
    classes.add_column("count", justify="right")
    for label, n in s.per_class.most_common():
        classes.add_row(label, str(n))
    if not s.per_class:
        classes.add_row("(none)", "0")
    console.print(classes)

    t0 = _start_time(result)
    timeline = Table(title="Timeline (s from the start)", title_justify="left", min_width=40)
    timeline.add_column("t (s)", justify="right")
    timeline.add_column("what")
    rows: list[tuple[float, str]] = []
    for e in s.events:
        if e.kind in _TIMELINE_KINDS:
            rows.append((e.time, _describe_event(e)))
    for t, cmd, outcome in s.commands:
        rows.append((t, f"command {cmd.kind} {_params(cmd)}" + ("" if outcome == "sent" else f" ({outcome})")))
    rows.sort(key=lambda r: r[0])
    for t, text in rows[:timeline_rows]:
        timeline.add_row(f"{t - t0:.2f}", text)
    if len(rows) > timeline_rows:
        timeline.add_row("...", f"{len(rows) - timeline_rows} more")
    console.print(timeline)

    if read.problems:
        losses = Table(title="Input problems (what was lost, where)", title_justify="left", min_width=40)
        losses.add_column("where")
        losses.add_column("what")
        for p in read.problems[:50]:
            losses.add_row(p.where, p.what)
        if len(read.problems) > 50:
            losses.add_row("...", f"{len(read.problems) - 50} more")
        console.print(losses)


_TIMELINE_KINDS = {
    "cue_fired", "cue_cleared", "rule_fired", "behavior_started", "behavior_finished",
    "behavior_cancelled", "behavior_preempted", "watchdog_tripped", "command_refused",
}


def _describe_event(event: Any) -> str:
    """The demo summary's plain-language phrasing of an event, else its kind and message."""
    from agent.summary import _SAY  # one phrasing for demo and replay

    say = _SAY.get(event.kind)
    if say is not None:
        try:
            return str(say(event.data))
        except (KeyError, TypeError, ValueError):
            pass
    return f"{event.kind}: {event.message}"


def _start_time(result: ReplayResult) -> float:
    times = [e.time for e in result.summary.events] + [t for t, _ in result.commands]
    return min(times) if times else 0.0


def _per_camera(counts: Counter[str]) -> str:
    return ", ".join(f"{cam}: {n}" for cam, n in sorted(counts.items())) or "none"


def _params(cmd: Any) -> str:
    from behaviors.commands import command_to_dict

    data = {k: v for k, v in command_to_dict(cmd).items() if k != "kind" and v is not None}
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in data.items())


# ----------------------------------------------------------------------------------- CLI
def replay_command(
    path: Path = typer.Argument(..., help="An MCAP recording, a video file or a folder of images."),
    config: str = typer.Option(
        "agent", "--config", "-c",
        help="Agent settings: a YAML file, or the name of a shipped one "
        f"({', '.join(configs.shipped_names(configs.AGENT_CONFIGS))}).",
    ),
    rules: str | None = typer.Option(
        None, "--rules", help="Cue rules (overrides the config's): a YAML file, or the name of a "
        f"shipped one ({', '.join(configs.shipped_names(configs.RULES))})."
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
    """Replay what a robot saw through the pipeline with a dry-run robot, and summarise."""
    from rich.console import Console

    from agent.config import config_overrides, load_agent_config
    from agent.logs import setup_logging
    from agent.recording import RecordingError
    from agent.replay_sources import ReplayInputError
    from configs.loading import ConfigError

    setup_logging(log_level.upper())
    if fast and speed is not None:
        typer.echo("spot-agent replay: --fast and --speed are exclusive", err=True)
        raise typer.Exit(EXIT_CONFIG)
    if mode not in ("auto", "recorded-run", "frames"):
        typer.echo(f"spot-agent replay: --mode must be auto, recorded-run or frames, not {mode}", err=True)
        raise typer.Exit(EXIT_CONFIG)
    try:
        cfg = load_agent_config(configs.find(config))
        cfg = config_overrides(cfg, **{"rules": configs.find(rules, configs.RULES) if rules else None})
    except (ConfigError, ValueError) as exc:
        typer.echo(f"spot-agent replay: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    try:
        result = asyncio.run(
            replay(path, cfg, mode=mode, speed=speed, fps=fps, out_mcap=out_mcap, out_video=out_video)  # type: ignore[arg-type]
        )
    except ReplayInputError as exc:
        typer.echo(f"spot-agent replay: {exc}", err=True)
        raise typer.Exit(EXIT_NOTHING_READABLE) from None
    except (ConfigError, RecordingError, OSError) as exc:
        typer.echo(f"spot-agent replay: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    render_summary(result, Console())
    raise typer.Exit(EXIT_OK)
