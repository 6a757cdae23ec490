"""The fleet report: per recording, how its replay went (commands vs the live run, rules fired,
perception counts, what was lost from the input); with two sides (regression mode), every
recording whose commands differ between them, with the first differing command and the frame
that led to it. JSON (`report.json`) and a readable summary (`summary.txt`, also printed).

`recordings` holds only what the tasks returned (deterministic: the same for any executor);
everything that depends on the run (wall times, the executor, interruption) is under `run`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.fleet.batch import BatchOutcome
from agent.fleet.executor import TaskFailed
from agent.fleet.replay_task import RecordingResult, ReplayTask

REPORT_VERSION = 1


def build_report(tasks: Sequence[ReplayTask], outcome: BatchOutcome[RecordingResult],
                 sides: dict[str, str], executor: str, slots: int) -> dict[str, Any]:
    """`sides`: side name -> how it was configured (one line each)."""
    results: dict[tuple[str, str], dict[str, Any]] = {}
    commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
    timings: dict[str, float] = {}
    for index, task in enumerate(tasks):
        got = outcome.results.get(index)
        key = (task.source, task.side)
        if isinstance(got, RecordingResult):
            results[key], commands[key] = got.result, got.commands
            timings[f"{task.source} [{task.side}]"] = round(got.wall_s, 3)
        elif isinstance(got, TaskFailed):
            results[key] = {"source": task.source, "side": task.side, "status": "failed", "error": got.message}
        else:
            results[key] = {"source": task.source, "side": task.side, "status": "not run (interrupted)"}
    recordings = []
    for source in dict.fromkeys(t.source for t in tasks):
        entry: dict[str, Any] = {"source": source, **{side: results[(source, side)] for side in sides}}
        if len(sides) == 2:
            a, b = list(sides)
            entry["regression"] = _regression(results[(source, a)], results[(source, b)],
                                              commands.get((source, a)), commands.get((source, b)), a, b)
        recordings.append(entry)
    done = sum(1 for r in outcome.results.values() if isinstance(r, RecordingResult))
    return {
        "fleet_report": REPORT_VERSION, "sides": sides, "recordings": recordings,
        "totals": _totals(recordings, list(sides)),
        "run": {"executor": executor, "slots": slots, "interrupted": outcome.interrupted,
                "tasks": len(tasks), "finished": done, "wall_s": round(outcome.wall_s, 3),
                "recordings_per_minute": round(60.0 * done / outcome.wall_s, 2) if outcome.wall_s else 0.0,
                "task_wall_s": timings},
    }


def first_command_difference(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> int | None:
    """The index of the first command that differs (kind, parameters, time or outcome), or None."""
    for index, (ca, cb) in enumerate(zip(a, b)):
        if (ca["command"], ca["time"], ca["outcome"]) != (cb["command"], cb["time"], cb["outcome"]):
            return index
    return None if len(a) == len(b) else min(len(a), len(b))


def _regression(ra: dict[str, Any], rb: dict[str, Any], ca: list[dict[str, Any]] | None,
                cb: list[dict[str, Any]] | None, a: str, b: str) -> dict[str, Any] | None:
    if ca is None or cb is None or ra.get("status") != "ok" or rb.get("status") != "ok":
        return None  # a side failed: nothing to compare
    index = first_command_difference(ca, cb)
    if index is None:
        return {"differs": False}
    first_a = ca[index] if index < len(ca) else None
    first_b = cb[index] if index < len(cb) else None
    # The frame that made the sides part: the earlier of the two decisions' frames.
    deciding = min((c for c in (first_a, first_b) if c is not None), key=lambda c: c["time"])
    return {"differs": True, "index": index, a: first_a, b: first_b, "frame": deciding["frame"],
            "first_difference": f"#{index}: {a} {_command_text(first_a)} vs {b} {_command_text(first_b)}"}


def _command_text(c: dict[str, Any] | None) -> str:
    if c is None:
        return "(no command)"
    params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in c["command"].items() if k != "kind" and v is not None)
    frame = c.get("frame")
    seen = f" after {frame['camera']} #{frame['seq']} at {frame['time']:.3f} s" if frame else ""
    refused = "" if c["outcome"] == "sent" else f" ({c['outcome']})"
    return f"{c['command'].get('kind')} {params}{refused} at {c['time']:.3f} s{seen}".replace("  ", " ")


def _totals(recordings: list[dict[str, Any]], sides: list[str]) -> dict[str, Any]:
    totals: dict[str, Any] = {}
    for side in sides:
        rs = [r[side] for r in recordings]
        ok = [r for r in rs if r.get("status") == "ok"]
        rules: Counter[str] = Counter()
        classes: Counter[str] = Counter()
        for r in ok:
            rules.update(r["rules_fired"])
            classes.update(r["perception"]["detections_per_class"])
        totals[side] = {
            "recordings": len(rs), "replayed": len(ok), "failed": sum(r["status"] == "failed" for r in rs),
            "not_run": sum(r["status"].startswith("not run") for r in rs),
            "no_frames": sum(r["status"] == "no frames" for r in rs),
            "differ_from_live": sum(1 for r in ok if r["vs_live"] and not r["vs_live"]["matches"]),
            "frames_processed": sum(r["perception"]["frames_processed"] for r in ok),
            "rules_fired": dict(sorted(rules.items())), "detections_per_class": dict(sorted(classes.items())),
        }
    if len(sides) == 2:
        totals["regressions"] = sum(1 for r in recordings if (r.get("regression") or {}).get("differs"))
    return totals


def recordings_json(report: dict[str, Any]) -> str:
    """The deterministic part, serialised: identical bytes for identical inputs and configs."""
    return json.dumps(report["recordings"], sort_keys=True, indent=1)


def write_report(out: Path, report: dict[str, Any], summary: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, sort_keys=True, indent=1) + "\n", encoding="utf-8")
    (out / "summary.txt").write_text(summary, encoding="utf-8")
