"""One recording's replay as a task: its options in, plain data out.

What comes out is what a fleet report holds for the recording, and nothing that depends on
where or when it ran (no wall-clock times, hosts or process ids: those are `wall_s`, kept apart),
so 1 worker, N workers and a Ray cluster give byte-identical results. Each command carries the
frame the engine had last observed when it was decided: in a regression, that is the frame
that made the two configurations part.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.core.observers import PipelineObserver
from behaviors.commands import command_to_dict

PROBLEMS_KEPT = 20  # input problems listed per recording (all are counted)


@dataclass(frozen=True)
class ReplayTask:
    """What to replay and how. `path` is absolute (workers may run elsewhere); `source` is the
    input as the user named it, for the report."""

    source: str
    path: str
    config: str | None = None
    rules: str | None = None
    mode: str = "auto"
    fps: float | None = None
    side: str = "A"
    detect_workers: int = 1


@dataclass
class RecordingResult:
    """A replay's outcome: `result` is deterministic; `commands` every command with its frame
    (for comparing two sides); `wall_s` how long it took (timings only)."""

    source: str
    side: str
    result: dict[str, Any]
    commands: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.result.get("status") == "ok"


class CommandFrames(PipelineObserver):
    """Each command with the frame the engine had observed last when it was decided."""

    def __init__(self) -> None:
        self.last_frame: dict[str, Any] | None = None
        self.commands: list[dict[str, Any]] = []

    def result_observed(self, now: float, result: Any) -> None:
        self.last_frame = {"camera": result.camera, "seq": result.seq, "time": result.time_local}

    def command(self, now: float, command: Any, outcome: str) -> None:
        self.commands.append({"time": now, "command": command_to_dict(command), "outcome": outcome,
                              "frame": self.last_frame})


def replay_recording(task: ReplayTask) -> RecordingResult:
    """Replay one input; any failure becomes a `failed` result naming the input, never an
    exception (one bad recording must not stop a fleet)."""
    from agent.recording.writer import RecordingError
    from agent.replay.reading import NoFrames, ReplayInputError
    from configs.loading import ConfigError

    started = time.perf_counter()
    try:
        result, commands = _replay(task)
    except NoFrames as exc:  # intact, nothing lost: not a failure (a run's start-up segment)
        result, commands = {"source": task.source, "side": task.side, "status": "no frames",
                            "note": str(exc)}, []
    except (ReplayInputError, ConfigError, RecordingError, OSError, ValueError) as exc:
        result, commands = _failed(task, str(exc)), []
    except Exception as exc:  # a bug met on one input: reported with it, the fleet goes on
        result, commands = _failed(task, f"{type(exc).__name__}: {exc}"), []
    return RecordingResult(task.source, task.side, result, commands, time.perf_counter() - started)


def _failed(task: ReplayTask, error: str) -> dict[str, Any]:
    return {"source": task.source, "side": task.side, "status": "failed", "error": error}


def _replay(task: ReplayTask) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from agent.recording.metadata import recording_header
    from agent.replay.config import load_replay_rules, resolve_replay_config
    from agent.replay.runner import replay

    path = Path(task.path)
    chosen = resolve_replay_config(path.name, recording_header(path), task.config, task.rules)
    frames = CommandFrames()
    try:
        replayed = asyncio.run(replay(
            path, chosen.config, mode=task.mode, fps=task.fps,  # type: ignore[arg-type]
            rules=load_replay_rules(chosen, path.name), observers=[frames],
            detect_workers=task.detect_workers))
    finally:
        chosen.close()
    return _describe(task, replayed, chosen.origin, chosen.warnings, frames.commands), frames.commands


def _describe(task: ReplayTask, replayed: Any, origin: str, warnings: list[str],
              commands: list[dict[str, Any]]) -> dict[str, Any]:
    s, read = replayed.summary, replayed.read
    events = s.events
    return {
        "source": task.source, "side": task.side, "status": "ok", "mode": replayed.mode,
        "configuration": origin, "warnings": list(warnings),
        "input": {"frames_read": read.frames, "complete": read.complete,
                  "problem_count": len(read.problems),
                  "problems": [f"{p.where}: {p.what}" for p in read.problems[:PROBLEMS_KEPT]]},
        "perception": {"frames_processed": s.frames_processed,
                       "dropped_stale": int(replayed.report.stats.get("dropped_stale", 0)),
                       "per_camera": dict(sorted(s.per_camera.items())),
                       "detections_per_class": dict(sorted(s.per_class.items()))},
        "cues_fired": _count(e.data.get("cue", "?") for e in events if e.kind == "cue_fired"),
        "rules_fired": _count(e.data.get("rule", "?") for e in events if e.kind == "rule_fired"),
        "commands": {"count": len(commands), "refused": s.refused,
                     "by_kind": _count(c["command"].get("kind", "?") for c in commands),
                     "sha256": hashlib.sha256(json.dumps(commands, sort_keys=True).encode()).hexdigest()},
        "vs_live": _vs_live(replayed.comparison),
    }


def _vs_live(comparison: Any) -> dict[str, Any] | None:
    if comparison is None:
        return None  # a video, a folder, or a frame-by-frame replay: no live run to compare with
    return {"matches": comparison.matches, "live": comparison.live, "replayed": comparison.replayed,
            "max_time_diff_s": comparison.max_time_diff_s,
            "first_difference": comparison.first_difference}


def _count(items: Any) -> dict[str, int]:
    return dict(sorted(Counter(items).items()))
