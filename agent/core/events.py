"""What the agent reports: one `AgentEvent` per thing an operator would want to know.

Events are logged as structured lines as they happen and kept for the run summary (`demo`
prints them in plain language, `replay` in its timeline: both with `describe_event`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("agent.core.events")

_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

# Severity of each kind of agent event, for logs (engine events are informational).
_LEVELS = {
    "lease_lost": logging.ERROR,
    "robot_gone": logging.ERROR,
    "connection_lost": logging.ERROR,
    "watchdog_tripped": logging.WARNING,
    "robot_unavailable": logging.WARNING,
    "command_refused": logging.WARNING,
    # The engine reports every command it emits (10 per second while walking): debug only.
    "command": logging.DEBUG,
    "command_capped": logging.DEBUG,
}


@dataclass(frozen=True)
class AgentEvent:
    time: float  # local clock
    kind: str  # e.g. "cue_fired", "behavior_started", "command", "watchdog_tripped"
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    source: str = "agent"  # "agent" or "engine"


class EventLog:
    """Collects events and logs each one as it happens."""

    def __init__(self, keep: int = 10000) -> None:
        self.events: list[AgentEvent] = []
        self._keep = keep
        # Called with every event as it is added (recorders, operator event streams).
        self.listeners: list[Callable[[AgentEvent], None]] = []

    def add(self, event: AgentEvent) -> AgentEvent:
        if len(self.events) < self._keep:
            self.events.append(event)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # a listener must never take the control path down
                log.exception("event listener failed", extra={"event": "listener_failed"})
        extra = {"event": event.kind}
        for key, value in event.data.items():
            if _loggable(value):
                # LogRecord owns some names (name, msg, args...): keep the field, rename it.
                extra[f"{key}_" if key in _RECORD_FIELDS else key] = value
        log.log(_LEVELS.get(event.kind, logging.INFO), event.message, extra=extra)
        return event

    def of_kind(self, *kinds: str) -> list[AgentEvent]:
        return [e for e in self.events if e.kind in kinds]


def _loggable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


# The engine's events phrased for a person, from their data (one phrasing for demo and replay).
_PHRASES: dict[str, Callable[[dict[str, Any]], str]] = {
    "cue_fired": lambda d: f"saw {_what(d)}",
    "cue_cleared": lambda d: f"no longer sees cue {d.get('cue')}",
    "rule_fired": lambda d: f"rule {d.get('rule')} fired -> {d.get('behavior')}",
    "rule_ignored": lambda d: f"rule {d.get('rule')} held back: {d.get('reason')}",
    "behavior_started": lambda d: f"started {d.get('name')}",
    "behavior_finished": lambda d: f"finished {d.get('name')}: {d.get('outcome')}"
    + (f" ({d.get('detail')})" if d.get("detail") else ""),
    "behavior_cancelled": lambda d: f"cancelled {d.get('name')} ({d.get('by')}: {d.get('reason')})",
    "behavior_preempted": lambda d: f"{d.get('name')} pre-empted by {d.get('by')}",
    "sequence_step": lambda d: f"  step {d.get('index')}: {d.get('behavior')}",
    "goal_refused": lambda d: f"refused a goal: {d.get('reason', d)}",
}
PHRASED_KINDS = frozenset(_PHRASES)  # the kinds `describe_event` says in plain language


def _what(d: dict[str, Any]) -> str:
    label = d.get("label") or d.get("cue")
    parts = [str(label)]
    if d.get("distance_m") is not None:
        parts.append(f"{d['distance_m']:.1f} m away")
    if d.get("bearing_rad") is not None:
        deg = math.degrees(d["bearing_rad"])
        parts.append("ahead" if abs(deg) < 10 else f"{abs(deg):.0f} deg {'left' if deg > 0 else 'right'}")
    if d.get("camera"):
        parts.append(f"({d['camera']})")
    return " ".join(parts) + f" [cue {d.get('cue')}]"


def describe_event(event: AgentEvent) -> str:
    """An event in plain language ("saw person 2.1 m away ahead ..."); events of other kinds (or
    whose data lacks what the phrasing needs) as their kind and message."""
    say = _PHRASES.get(event.kind)
    if say is not None:
        try:
            return str(say(event.data))
        except (KeyError, TypeError, ValueError):
            pass
    return f"{event.kind}: {event.message}"
