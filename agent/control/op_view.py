"""What `spot-agent op status` and `spot-agent op watch` print: pure functions of the agent's
answers (tested directly).

Everything that came from the agent is shown as text, never interpreted as rich markup: a
behavior or camera name with "[red]" in it must not restyle the operator's terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.text import Text

    from agent.control.protocol import Event


def _yes_no(value: Any, yes: str, no: str) -> str:
    return "?" if value is None else (yes if value else no)


def format_status(status: dict[str, Any], endpoint: str) -> list[str]:
    """Rich-markup lines; everything that came from the agent is escaped."""
    from rich.markup import escape

    lines = [f"[bold]Agent at {escape(endpoint)}[/bold]"]
    behavior = status.get("behavior")
    if behavior:
        since = behavior.get("started")
        running = f", running {time.time() - since:.1f} s" if isinstance(since, (int, float)) else ""
        name, source = escape(str(behavior.get("name"))), escape(str(behavior.get("source", "?")))
        if behavior.get("rule"):
            source += f", rule {escape(str(behavior['rule']))}"
        lines.append(f"  Behavior: [bold]{name}[/bold] ({source}{running})")
    else:
        lines.append("  Behavior: none")
    paused = status.get("cues_paused")
    lines.append("  Cues: " + _yes_no(paused, "[yellow]paused[/yellow]", "active"))
    robot = status.get("robot") or {}
    if robot:
        parts = [
            _yes_no(robot.get("connected"), "connected", "[red]NOT connected[/red]"),
            _yes_no(robot.get("powered"), "motors on", "motors off"),
            _yes_no(robot.get("estopped"), "[red]E-Stopped[/red]", "E-Stop released"),
            _yes_no(robot.get("has_lease"), "lease held", "[red]no lease[/red]"),
        ]
        detail = f" ({escape(str(robot['detail']))})" if robot.get("detail") else ""
        lines.append("  Robot: " + ", ".join(parts) + detail)
    cameras = status.get("cameras") or {}
    if cameras:
        lines.append("  Cameras:")
        width = max(len(name) for name in cameras)
        for name, cam in sorted(cameras.items()):
            rate = cam.get("rate_hz")
            age = cam.get("frame_age_s")
            rate_text = f"{rate:5.1f} Hz" if isinstance(rate, (int, float)) else "    - Hz"
            age_text = f"latest frame {age:.2f} s old" if isinstance(age, (int, float)) else "no frame yet"
            lines.append(f"    {escape(name):<{width}}  {rate_text}  {age_text}")
    return lines


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 1000):03d}"


def _detections_text(items: list[dict[str, Any]]) -> str:
    if not items:
        return "nothing"
    parts = []
    for d in items[:8]:
        text = f"{d.get('label')} {float(d.get('score', 0)):.2f}"
        if isinstance(d.get("distance_m"), (int, float)):
            text += f" at {d['distance_m']:.1f} m"
        parts.append(text)
    return ", ".join(parts) + (f" (+{len(items) - 8} more)" if len(items) > 8 else "")


def _command_text(cmd: dict[str, Any]) -> str:
    kind = cmd.get("kind", "?")
    if kind == "velocity" and "vx" in cmd:
        return (
            f"velocity vx={cmd.get('vx', 0):.2f} vy={cmd.get('vy', 0):.2f} "
            f"vyaw={cmd.get('vyaw', 0):.2f} for {cmd.get('duration_s', 0):.1f} s"
        )
    if kind == "goto" and "x" in cmd:
        return (
            f"go to ({cmd.get('x', 0):.2f}, {cmd.get('y', 0):.2f}, yaw {cmd.get('yaw', 0):.2f}) "
            f"in {cmd.get('frame')}"
        )
    return str(kind)


def _detection_line(d: dict[str, Any]) -> tuple[str, bool]:
    return f"{d.get('camera', '?')}: {_detections_text(d.get('detections') or [])}", False


def _cue_line(d: dict[str, Any]) -> tuple[str, bool]:
    text = f"rule {d.get('rule', '?')!r} fired"
    if d.get("behavior"):
        text += f" -> {d['behavior']}"
    if d.get("label"):
        text += f" (saw {d['label']})"
    return text, False


def _behavior_line(d: dict[str, Any]) -> tuple[str, bool]:
    text = f"{d.get('name', '?')} {d.get('state', '?')}"
    if d.get("source"):
        text += f" ({d['source']}" + (f", rule {d['rule']})" if d.get("rule") else ")")
    if d.get("reason"):
        text += f": {d['reason']}"
    return text, d.get("state") == "failed"


def _command_line(d: dict[str, Any]) -> tuple[str, bool]:
    ok = d.get("ok", True)
    text = ("sent " if ok else "REFUSED ") + _command_text(d.get("command") or {})
    if d.get("source"):
        text += f" ({d['source']})"
    if d.get("error"):
        text += f": {d['error']}"
    return text, not ok


def _health_line(d: dict[str, Any]) -> tuple[str, bool]:
    parts = []
    for name, cam in sorted((d.get("cameras") or {}).items()):
        rate, age = cam.get("rate_hz"), cam.get("frame_age_s")
        rate_text = f"{rate:.1f} Hz" if isinstance(rate, (int, float)) else "- Hz"
        age_text = f"age {age:.2f} s" if isinstance(age, (int, float)) else "no frame"
        parts.append(f"{name} {rate_text} {age_text}")
    robot = d.get("robot") or {}
    bad = False
    if robot:
        words = {
            "connected": ("connected", "NOT CONNECTED"),
            "powered": ("motors on", "motors off"),
            "estopped": ("E-STOPPED", "E-Stop released"),
            "has_lease": ("lease held", "NO LEASE"),
        }
        said = [words[k][0 if robot[k] else 1] for k in words if isinstance(robot.get(k), bool)]
        bad = any(w.isupper() or w == "motors off" for w in said)
        parts.append("robot: " + ", ".join(said))
    return "  ".join(parts), bad


def _operator_line(d: dict[str, Any]) -> tuple[str, bool]:
    text = f"{d.get('operator', '?')}: {str(d.get('cmd', '?')).replace('_', '-')}"
    args = d.get("args")
    if isinstance(args, dict) and args.get("name"):
        text += f" {args['name']}"
    if d.get("ok"):
        return text + " -> ok", False
    return text + f" -> refused: {(d.get('error') or {}).get('message', '')}", True


_FORMATTERS: dict[str, Callable[[dict[str, Any]], tuple[str, bool]]] = {
    "detection": _detection_line,
    "cue": _cue_line,
    "behavior": _behavior_line,
    "command": _command_line,
    "health": _health_line,
    "operator": _operator_line,
}


def format_event(event: Event) -> Text:
    """One readable line per event; data is shown as text, never as rich markup."""
    import json

    from rich.text import Text

    formatter = _FORMATTERS.get(event.topic)
    alarming = False
    try:
        text, alarming = formatter(event.data) if formatter else (json.dumps(event.data), False)
    except (TypeError, ValueError, KeyError, AttributeError):  # an unexpected shape: show it raw
        text = json.dumps(event.data)
    return Text.assemble(
        (_clock(event.time), "dim"),
        " ",
        (f"{event.topic:<9}", "bold"),
        " ",
        (text, "red" if alarming else ""),
    )
