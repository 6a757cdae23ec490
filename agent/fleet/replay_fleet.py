"""A fleet replay from options to exit code: tasks (one per input and side), the executor,
the batch with its progress bar, the report printed and written."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.fleet.replay_task import ReplayTask

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_DIFFER, EXIT_INTERRUPTED = 0, 1, 2, 6, 130


@dataclass(frozen=True)
class FleetOptions:
    paths: list[Path]
    config: str | None
    rules: str | None
    mode: str
    fps: float | None
    compare_config: str | None
    compare_rules: str | None
    workers: int
    ray: str | None
    report: Path | None
    log_level: int = logging.WARNING


def make_tasks(options: FleetOptions, detect_workers: int) -> tuple[list[ReplayTask], dict[str, str]]:
    """One task per input and side (B only in regression mode), and how each side is configured."""
    sides = {"A": _side_text(options.config, options.rules, "as recorded")}
    side_options = {"A": (options.config, options.rules)}
    if options.compare_config is not None or options.compare_rules is not None:
        b = (options.compare_config or options.config, options.compare_rules or options.rules)
        side_options["B"] = b
        sides["B"] = _side_text(*b, "as recorded")
    tasks = [ReplayTask(str(path), str(path.resolve()), config, rules, options.mode, options.fps,
                        side, detect_workers)
             for path in options.paths for side, (config, rules) in side_options.items()]
    return tasks, sides


def _side_text(config: str | None, rules: str | None, default: str) -> str:
    parts = [f"config {Path(config).name}" if config else f"config {default}"]
    if rules:
        parts.append(f"rules {Path(rules).name}")
    return ", ".join(parts)


def run_fleet(options: FleetOptions, executor: Any, console: Any = None) -> dict[str, Any]:
    """Replay every task on `executor` and build the report (nothing printed or written)."""
    from agent.fleet.batch import run_batch
    from agent.fleet.replay_task import replay_recording
    from agent.fleet.report import build_report

    tasks, sides = make_tasks(options, _detect_workers(options, executor.slots))
    outcome = run_batch(executor, replay_recording, tasks, title="replaying",
                        labels=[t.source for t in tasks], weights=[_size(t.path) for t in tasks],
                        console=console)
    return build_report(tasks, outcome, sides, executor.description, executor.slots)


def _detect_workers(options: FleetOptions, slots: int) -> int:
    """Detector threads per replay: the machine's cores shared among the replays running at
    once; on Ray, one (each task reserves one CPU). Results do not depend on it."""
    if options.ray is not None:
        return 1
    return max(1, (os.cpu_count() or 1) // max(1, slots))


def _size(path: str) -> float:
    try:
        return float(max(os.stat(path).st_size, 1)) if not os.path.isdir(path) else 1e6
    except OSError:
        return 1.0


def replay_fleet(options: FleetOptions) -> int:
    """The `replay` command for many inputs: runs, prints the summary, writes the report, and
    returns the exit code."""
    from agent.fleet.choose import make_executor
    from agent.fleet.ray_executor import RayMissing
    from agent.fleet.report import write_report
    from agent.fleet.summary import render_summary

    try:
        sides = 2 if options.compare_config is not None or options.compare_rules is not None else 1
        executor = make_executor(min(options.workers, sides * len(options.paths)), options.ray,
                                 options.log_level)
    except RayMissing as exc:
        print(f"spot-agent replay: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        report = run_fleet(options, executor)
    finally:
        executor.close()
    summary = render_summary(report)
    print(summary, end="", flush=True)  # plain text as written to summary.txt (no wrapping)
    if options.report is not None:
        write_report(options.report, report, summary)
    return exit_code(report)


def exit_code(report: dict[str, Any]) -> int:
    """The fleet's exit code from its report (see `agent.fleet.command`)."""
    if report["run"]["interrupted"]:
        return EXIT_INTERRUPTED
    totals = report["totals"]
    sides = [k for k in totals if k != "regressions"]
    differ = totals["regressions"] if "regressions" in totals else totals[sides[0]]["differ_from_live"]
    if differ:
        return EXIT_DIFFER
    if any(totals[side]["failed"] for side in sides):
        return EXIT_FAILED
    return EXIT_OK
