"""What a replay found: the counts its pipeline observer kept, and the result `replay()` returns.

Kept apart from the command (which runs a replay) and the summary (which shows one), so both
can use it without importing each other.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.core.observers import PipelineObserver
from agent.replay.compare import CommandComparison


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
    config_origin: str = ""  # where the configuration came from (recorded, --config, shipped)
    config_warnings: list[str] = field(default_factory=list)  # said loudly: not the recorded one

    @property
    def frames_per_s(self) -> float:
        return self.summary.frames_processed / self.wall_s if self.wall_s > 0 else 0.0
