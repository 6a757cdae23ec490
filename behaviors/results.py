"""What the cue engine hands out: the commands of a tick (`TickResult`) and, for the record,
what it did (`EngineEvent`). Plain data: the agent decides on the typed fields, never on event
kinds; events go to logs, recordings and the operator view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from behaviors.commands import MotionCommand
from perception.detection import Sighting


@dataclass
class EngineEvent:
    """Something the engine did or saw, for logs, recordings and the operator view."""

    kind: str
    time: float
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TickResult:
    """What one control tick decided: the commands to send now and the rule that fired, if any.

    `fired` is the name of the first rule whose behavior started on this tick (None when no rule
    fired): the agent measures cue-to-command latency to the first command of a firing.
    """

    commands: list[MotionCommand]
    fired: str | None = None


def sighting_data(s: Sighting | None) -> dict[str, Any]:
    if s is None:
        return {}
    return {
        "label": s.label,
        "score": s.score,
        "camera": s.camera,
        "distance_m": s.distance_m,
        "bearing_rad": s.bearing_rad,
        "position_odom": list(s.position_odom) if s.position_odom is not None else None,
    }


def params_error(name: str, err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        got = e.get("input")
        got_text = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
        parts.append(f"{loc}: {e['msg']}{got_text}")
    return f"launch {name!r}: " + "; ".join(parts)
