"""A run report in plain language: what the robot saw, what it did, how fast (for `demo`)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from agent.core.events import PHRASED_KINDS, describe_event
from agent.core.pipeline import PipelineReport

# Agent events worth telling a person about (the engine's are `PHRASED_KINDS`), by their message.
_AGENT_KINDS = {
    "watchdog_tripped", "watchdog_recovered", "lease_lost", "connection_lost", "reconnected",
    "robot_unavailable", "robot_available", "command_refused",
}


def _ms(summary: dict[str, Any]) -> str:
    if not summary or summary.get("n", 0) == 0:
        return "n/a"
    return f"p50 {summary['p50']:.0f} ms, p95 {summary['p95']:.0f} ms (n={summary['n']})"


def describe_run(report: PipelineReport, t0: float | None = None) -> str:
    """A few dozen readable lines: timeline, commands, final pose, measurements."""
    start = t0 if t0 is not None else (report.events[0].time if report.events else 0.0)
    lines = ["What the robot saw and did:"]
    for e in report.events:
        if e.kind in PHRASED_KINDS:
            text = describe_event(e)
        elif e.kind in _AGENT_KINDS:
            text = e.message
        else:
            continue
        lines.append(f"  {e.time - start:6.2f} s  {text}")
    if len(lines) == 1:
        lines.append("  nothing: no cue appeared")
    seen = report.stats.get("seen") or {}
    if seen:
        parts = []
        for label, v in seen.items():
            closest = f", closest {v['closest_m']:.1f} m" if v.get("closest_m") is not None else ""
            parts.append(f"{label} in {v['frames']} frames{closest}")
        lines.append("Perception saw: " + "; ".join(parts))
    else:
        lines.append("Perception saw: nothing it knows")
    kinds = Counter(cmd.kind for _, cmd in report.commands)
    lines.append(
        "Commands sent: "
        + (", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) if kinds else "none")
    )
    status = report.final_status
    if status is not None:
        lines.append(
            f"Final pose (odom): x={status.odom_x:.2f} m, y={status.odom_y:.2f} m, "
            f"yaw={math.degrees(status.odom_yaw):.0f} deg"
        )
    s = report.stats
    lines.append(
        f"Detection: {s['detect_fps']:.1f} frames/s over {s['elapsed_s']:.1f} s "
        f"({s['detected']} frames, {s['dropped_stale']} dropped as stale)"
    )
    for name, c in s["cameras"].items():
        cam_fps = c.get("camera_fps")
        skipped = c.get("skipped")
        extra = f", camera {cam_fps:.1f} fps, {skipped} skipped (latest wins)" if cam_fps is not None else ""
        lines.append(f"  {name}: detected {c['detect_fps']:.1f} fps{extra}")
    lines.append(f"Frame age at detection: {_ms(s['age_at_detection_ms'])}")
    lines.append(f"Detector time per frame: {_ms(s['detect_ms'])}")
    lines.append(f"Cue-to-command latency: {_ms(s['cue_to_command_ms'])} "
                 f"(from capture: {_ms(s['capture_to_command_ms'])})")
    lines.append(f"Run ended: {report.reason}")
    return "\n".join(lines)
