"""The fleet report in words: one line per recording, then the regressions, totals and how the
run went. Plain text (written as summary.txt and printed as it is)."""

from __future__ import annotations

from typing import Any


def render_summary(report: dict[str, Any]) -> str:
    run, sides = report["run"], report["sides"]
    lines = []
    for side, how in sides.items():
        lines.append(f"side {side}: {how}" if len(sides) > 1 else f"configuration: {how}")
    width = max([len(r["source"]) for r in report["recordings"]] + [6])
    for entry in report["recordings"]:
        for side in sides:
            tag = f" [{side}]" if len(sides) > 1 else ""
            lines.append(f"{entry['source']:<{width}}{tag}  {_recording_line(entry[side])}")
    if len(sides) == 2:
        lines += _regressions(report)
    for side in sides:
        t = report["totals"][side]
        tag = f" {side}" if len(sides) > 1 else ""
        lines.append(f"totals{tag}: {t['replayed']} of {t['recordings']} replayed, {t['failed']} failed, "
                     f"{t['differ_from_live']} differ from the live run; {t['frames_processed']} frames")
        lines.append(f"  rules fired: {_counts(t['rules_fired'])}")
        lines.append(f"  detections: {_counts(t['detections_per_class'])}")
    lines.append(f"ran on {run['executor']}: {run['finished']} of {run['tasks']} tasks in {run['wall_s']:.1f} s "
                 f"({run['recordings_per_minute']:.1f} recordings/min)")
    if run["interrupted"]:
        lines.append(f"INTERRUPTED (Ctrl-C): {run['tasks'] - run['finished']} tasks not run; "
                     "this report is partial")
    return "\n".join(lines) + "\n"


def _recording_line(r: dict[str, Any]) -> str:
    if r["status"] != "ok":
        return f"{r['status'].upper()}: {r.get('error') or r.get('note', '')}".rstrip(": ")
    c, p = r["commands"], r["perception"]
    live = r["vs_live"]
    if live is None:
        verdict = "no live run to compare"
    elif live["matches"]:
        verdict = f"same as live ({live['live']} commands)"
    else:
        verdict = f"DIFFERS from live: {live['first_difference']}"
    lost = "" if r["input"]["complete"] else f"; input incomplete ({r['input']['problem_count']} problems)"
    return (f"ok  {p['frames_processed']} frames; rules {_counts(r['rules_fired'])}; "
            f"commands {c['count']} ({_counts(c['by_kind'])}); {verdict}{lost}")


def _regressions(report: dict[str, Any]) -> list[str]:
    differ = [r for r in report["recordings"] if (r.get("regression") or {}).get("differs")]
    a, b = list(report["sides"])
    lines = [f"regressions: {len(differ)} of {len(report['recordings'])} recordings give other commands "
             f"under {b} than under {a}"]
    for r in differ:
        lines.append(f"  {r['source']}: {r['regression']['first_difference']}")
    return lines


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"
