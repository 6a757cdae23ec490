"""How a replay is shown: rich tables of the input, the counts, the comparison with the live run,
a timeline of what happened and what was lost from the input.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agent.core.events import describe_event
from agent.replay.result import ReplayResult
from behaviors.commands import MotionCommand, command_to_dict

_TIMELINE_KINDS = {
    "cue_fired", "cue_cleared", "rule_fired", "behavior_started", "behavior_finished",
    "behavior_cancelled", "behavior_preempted", "watchdog_tripped", "command_refused",
}


def render_summary(result: ReplayResult, console: Any = None, timeline_rows: int = 40) -> None:
    """The replay summary as rich tables: input, counts, commands, timeline, losses."""
    console = console or Console()
    console.print(_overview(result))
    console.print(_classes(result))
    console.print(_timeline(result, timeline_rows))
    if result.read.problems:
        console.print(_losses(result))


def _overview(result: ReplayResult) -> Table:
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
    _add_live_rows(overview, result)
    overview.add_row("input complete", "yes" if read.complete else "no (see losses)")
    for out in result.out_paths:
        overview.add_row("wrote", escape(str(out)))
    return overview


def _add_live_rows(overview: Table, result: ReplayResult) -> None:
    """How the replay compares with the live run, and what of it could not be replayed."""
    if result.comparison is not None:
        c = result.comparison
        if not c.matches:
            verdict = f"[bold red]DIFFERENT: {escape(c.first_difference)}[/]"
        else:
            verdict = ("same commands in the same order, identical parameters; times within "
                       f"{c.max_time_diff_s * 1000:.1f} ms")
        overview.add_row("vs live run", f"{c.live} live, {c.replayed} replayed: {verdict}")
    if result.live is not None and result.live.operator_inputs:
        overview.add_row("operator inputs", f"{result.live.operator_inputs} replayed as recorded")
    if result.live is not None and result.live.unreproducible:
        shown = ", ".join(result.live.unreproducible[:5])
        more = len(result.live.unreproducible) - 5
        overview.add_row("not replayable", shown + (f" and {more} more" if more > 0 else "")
                         + " (operator input is not in the recording)")


def _classes(result: ReplayResult) -> Table:
    per_class = result.summary.per_class
    classes = Table(title="Detections per class", title_justify="left", min_width=24)
    classes.add_column("class")
    classes.add_column("count", justify="right")
    for label, n in per_class.most_common():
        classes.add_row(label, str(n))
    if not per_class:
        classes.add_row("(none)", "0")
    return classes


def _timeline(result: ReplayResult, max_rows: int) -> Table:
    s = result.summary
    t0 = _start_time(result)
    timeline = Table(title="Timeline (s from the start)", title_justify="left", min_width=40)
    timeline.add_column("t (s)", justify="right")
    timeline.add_column("what")
    rows: list[tuple[float, str]] = []
    for e in s.events:
        if e.kind in _TIMELINE_KINDS:
            rows.append((e.time, describe_event(e)))
    for t, cmd, outcome in s.commands:
        rows.append((t, f"command {cmd.kind} {_params(cmd)}" + ("" if outcome == "sent" else f" ({outcome})")))
    rows.sort(key=lambda r: r[0])
    for t, text in rows[:max_rows]:
        timeline.add_row(f"{t - t0:.2f}", escape(text))
    if len(rows) > max_rows:
        timeline.add_row("...", f"{len(rows) - max_rows} more")
    return timeline


def _losses(result: ReplayResult) -> Table:
    problems = result.read.problems
    losses = Table(title="Input problems (what was lost, where)", title_justify="left", min_width=40)
    losses.add_column("where")
    losses.add_column("what")
    for p in problems[:50]:
        losses.add_row(escape(p.where), escape(p.what))
    if len(problems) > 50:
        losses.add_row("...", f"{len(problems) - 50} more")
    return losses


def _start_time(result: ReplayResult) -> float:
    times = [e.time for e in result.summary.events] + [t for t, _ in result.commands]
    return min(times) if times else 0.0


def _per_camera(counts: Counter[str]) -> str:
    return ", ".join(f"{cam}: {n}" for cam, n in sorted(counts.items())) or "none"


def _params(cmd: MotionCommand) -> str:
    data = {k: v for k, v in command_to_dict(cmd).items() if k != "kind" and v is not None}
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in data.items())
