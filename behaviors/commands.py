"""Motion commands as plain data.

Behaviors produce these; a `Robot` (the real Spot, the sim, or the dry-run recorder used by
replay) turns them into robot commands. Keeping them plain data is what lets replay compare the
commands a recording *would* have produced with those a live run sent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Stand:
    kind: Literal["stand"] = "stand"


@dataclass(frozen=True)
class Sit:
    kind: Literal["sit"] = "sit"


@dataclass(frozen=True)
class Stop:
    """Stop walking now (the robot keeps standing)."""

    kind: Literal["stop"] = "stop"


@dataclass(frozen=True)
class Velocity:
    """Body velocity for `duration_s` seconds; the robot stops by itself at the deadline."""

    vx: float
    vy: float
    vyaw: float
    duration_s: float
    kind: Literal["velocity"] = "velocity"


@dataclass(frozen=True)
class GoTo:
    """Walk to (x, y, yaw) in `frame` (`odom` or `vision`), giving up after `duration_s`."""

    x: float
    y: float
    yaw: float
    frame: str
    duration_s: float
    kind: Literal["goto"] = "goto"
    # Walking speed caps for this goal (None = the robot's defaults). The robot maps them to
    # the trajectory command's mobility velocity limit, so the rules' speed caps hold for
    # go-to goals too, not only for velocity commands.
    max_linear_mps: float | None = None
    max_angular_rps: float | None = None


MotionCommand = Stand | Sit | Stop | Velocity | GoTo


def command_to_dict(cmd: MotionCommand) -> dict[str, Any]:
    return asdict(cmd)


def command_from_dict(data: dict[str, Any]) -> MotionCommand:
    kinds = {"stand": Stand, "sit": Sit, "stop": Stop, "velocity": Velocity, "goto": GoTo}
    data = dict(data)
    cls = kinds[data.pop("kind")]
    return cls(**data)  # type: ignore[arg-type]
