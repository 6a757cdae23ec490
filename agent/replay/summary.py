"""What a replay found, and how it is shown: counts, the comparison with the live run, tables."""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.core.observers import PipelineObserver

if TYPE_CHECKING:
    from agent.replay.command import ReplayResult


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


@dataclass
class CommandComparison:
    """How a replay's commands compare with the live run's."""

    live: int
    replayed: int
    same_kinds_in_order: bool
    max_param_diff: float
    max_time_diff_s: float
    first_difference: str = ""  # the first command that differs (kind, parameter or time)
    time_tolerance_s: float = 0.0

    @property
    def identical(self) -> bool:
        return self.same_kinds_in_order and self.max_param_diff == 0.0 and self.max_time_diff_s == 0.0

    @property
    def matches(self) -> bool:
        """Same commands, same order, same parameters, each within `time_tolerance_s` of its live
        time (one control period: a command one tick later is a different decision)."""
        return (
            self.same_kinds_in_order
            and self.max_param_diff == 0.0
            and self.max_time_diff_s <= self.time_tolerance_s
        )


def _differences(i: int, t_live: float, d_live: dict[str, Any], t_rep: float, d_rep: dict[str, Any],
                 time_tolerance_s: float) -> tuple[str, float]:
    """The first difference between two commands of the same kind, and their largest parameter
    difference."""
    first, max_param = "", 0.0
    for key, value in d_live.items():
        other = d_rep.get(key)
        if isinstance(value, (int, float)) and isinstance(other, (int, float)):
            diff = abs(float(value) - float(other))
        else:
            diff = 0.0 if value == other else math.inf
        if diff > 0.0:
            first = first or f"#{i} {d_live.get('kind')}: {key} live {value!r} vs replay {other!r}"
        max_param = max(max_param, diff)
    if not first and abs(t_live - t_rep) > time_tolerance_s:
        first = (f"#{i} {d_live.get('kind')}: live at {t_live:.3f} s vs replay at {t_rep:.3f} s "
                 f"({abs(t_live - t_rep) * 1000:.0f} ms apart)")
    return first, max_param


def compare_commands(
    live: list[tuple[float, Any]], replayed: list[tuple[float, Any]], time_tolerance_s: float = 0.0
) -> CommandComparison:
    """Live vs replayed (time, command) lists: kinds in order, parameters, times; the first
    difference in words."""
    from behaviors.commands import command_to_dict

    same = [c.kind for _, c in live] == [c.kind for _, c in replayed]
    max_param, max_time, first = 0.0, 0.0, ""
    for i, ((t_live, c_live), (t_rep, c_rep)) in enumerate(zip(live, replayed)):
        d_live, d_rep = command_to_dict(c_live), command_to_dict(c_rep)
        if d_live.get("kind") != d_rep.get("kind"):
            first = first or f"#{i}: live {d_live} vs replay {d_rep}"
            continue
        max_time = max(max_time, abs(t_live - t_rep))
        difference, param = _differences(i, t_live, d_live, t_rep, d_rep, time_tolerance_s)
        first, max_param = first or difference, max(max_param, param)
    if len(live) != len(replayed) and not first:
        n = min(len(live), len(replayed))
        extra = (f"#{n}: live {command_to_dict(live[n][1])} was not replayed" if len(live) > n
                 else f"#{n}: replay {command_to_dict(replayed[n][1])} was not sent live")
        first = f"live sent {len(live)} commands, replay {len(replayed)}; {extra}"
    return CommandComparison(len(live), len(replayed), same, max_param, max_time, first,
                             time_tolerance_s)


def render_summary(result: ReplayResult, console: Any = None, timeline_rows: int = 40) -> None:
    """The replay summary as rich tables: input, counts, commands, timeline, losses."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    s, read = result.summary, result.read
    overview = Table(title=f"Replay of {escape(result.source)}", show_header=False, title_justify="left")
    overview.add_column("what")
    overview.add_column("value")
    overview.add_row("mode", result.mode)
    if result.config_origin:
        overview.add_row("configuration", result.config_origin)
    for warning in result.config_warnings:
        overview.add_row("[bold red]WARNING[/]", f"[bold red]{escape(warning)}[/]")
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
        if not c.matches:
            verdict = f"[bold red]DIFFERENT: {escape(c.first_difference)}[/]"
        else:
            verdict = ("same commands in the same order, identical parameters; times within "
                       f"{c.max_time_diff_s * 1000:.1f} ms")
        overview.add_row("vs live run", f"{c.live} live, {c.replayed} replayed: {verdict}")
    if result.live is not None and result.live.unreproducible:
        shown = ", ".join(result.live.unreproducible[:5])
        more = len(result.live.unreproducible) - 5
        overview.add_row("not replayable", shown + (f" and {more} more" if more > 0 else "")
                         + " (operator input is not in the recording)")
    overview.add_row("input complete", "yes" if read.complete else "no (see losses)")
    for out in result.out_paths:
        overview.add_row("wrote", escape(str(out)))
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
        timeline.add_row(f"{t - t0:.2f}", escape(text))
    if len(rows) > timeline_rows:
        timeline.add_row("...", f"{len(rows) - timeline_rows} more")
    console.print(timeline)

    if read.problems:
        losses = Table(title="Input problems (what was lost, where)", title_justify="left", min_width=40)
        losses.add_column("where")
        losses.add_column("what")
        for p in read.problems[:50]:
            losses.add_row(escape(p.where), escape(p.what))
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


