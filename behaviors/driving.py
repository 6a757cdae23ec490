"""Helpers for behaviors that drive the robot with deadline-bounded velocity commands."""

from __future__ import annotations

import math

from behaviors.commands import MotionCommand, Stop, Velocity
from behaviors.deadman import StopBudget
from behaviors.geometry import clamp
from behaviors.limits import MotionLimits


def capped_velocity(
    vx: float,
    vy: float,
    vyaw: float,
    limits: MotionLimits,
    stop: StopBudget,
    max_speed_mps: float | None = None,
) -> Velocity:
    """A velocity command within the limits, with the deadman deadline for its speed.

    The linear part is scaled as a vector (direction kept) so a diagonal command is capped on
    its speed, not per axis.
    """
    speed_cap = (
        limits.max_speed_mps if max_speed_mps is None else min(max_speed_mps, limits.max_speed_mps)
    )
    speed = math.hypot(vx, vy)
    if speed > speed_cap:
        vx, vy = vx * speed_cap / speed, vy * speed_cap / speed
    vyaw = clamp(vyaw, -limits.max_yaw_rate_rps, limits.max_yaw_rate_rps)
    return Velocity(
        vx=vx, vy=vy, vyaw=vyaw, duration_s=stop.deadline_s(math.hypot(vx, vy), vyaw)
    )


class MotionLatch:
    """Whether the last command set the robot moving, so Stop is sent once, not every tick."""

    def __init__(self) -> None:
        self.moving = False

    def drive(self, command: Velocity | MotionCommand) -> list[MotionCommand]:
        self.moving = True
        return [command]

    def halt(self) -> list[MotionCommand]:
        """[Stop()] if the robot was set moving, else nothing."""
        if not self.moving:
            return []
        self.moving = False
        return [Stop()]
