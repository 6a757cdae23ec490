"""What the agent reports: one `AgentEvent` per thing an operator would want to know.

Events are logged as structured lines as they happen and kept for the run summary (`demo`
prints them in plain language).
"""

from __future__ import annotations

import logging
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
