"""Run a batch of tasks on an executor with a progress bar (and its ETA) on stderr, results
collected by task index as they finish. Ctrl-C stops it cleanly: queued tasks are dropped, the
workers ended, and what finished is returned marked `interrupted`."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from agent.fleet.executor import Executor, TaskFailed

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class BatchOutcome(Generic[R]):
    results: dict[int, R | TaskFailed] = field(default_factory=dict)
    interrupted: bool = False
    wall_s: float = 0.0


def run_batch(
    executor: Executor,
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    title: str,
    labels: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
    console: Any = None,
) -> BatchOutcome[R]:
    """Every task's result (or `TaskFailed`) by index. `weights` (e.g. file sizes) make the bar
    and its ETA follow the work rather than the task count."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    weights = list(weights) if weights is not None else [1.0] * len(tasks)
    outcome: BatchOutcome[R] = BatchOutcome()
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[done]}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    started = time.perf_counter()
    with Progress(*columns, console=console or Console(stderr=True), transient=True) as progress:
        bar = progress.add_task(title, total=sum(weights) or 1.0, done=f"0/{len(tasks)}")
        try:
            for index, result in executor.run(fn, tasks):
                outcome.results[index] = result
                last = f" (last: {labels[index]})" if labels else ""
                progress.update(bar, advance=weights[index], done=f"{len(outcome.results)}/{len(tasks)}{last}")
        except KeyboardInterrupt:
            executor.stop()
            outcome.interrupted = True
    outcome.wall_s = time.perf_counter() - started
    return outcome
