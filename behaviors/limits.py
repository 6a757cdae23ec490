"""Motion caps, and the one function every motion command passes through: `cap_command`.

The same caps are applied in two places with two sets of values, never two implementations:
the cue engine caps what behaviors produce with the rules file's `limits:`, and the agent's
pipeline caps what leaves for the robot with its `safety:` section (the same names:
`SafetyConfig.motion_limits()`), the last word whatever a rules file says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import Field, model_validator

from behaviors.commands import GoTo, MotionCommand, Velocity
from behaviors.deadman import StopBudget
from behaviors.geometry import RobotPose
from configs.loading import StrictModel


class MotionLimits(StrictModel):
    """Speed and distance caps applied to every command the behaviors produce (deadlines come
    from the stop promise: behaviors/deadman.py)."""


    max_speed_mps: float = Field(
        0.5,
        gt=0,
        le=1.6,
        description="Cap on commanded linear (body) speed, m/s; Spot walks up to 1.6 m/s.",
    )
    max_yaw_rate_rps: float = Field(
        0.8, gt=0, le=2.0, description="Cap on commanded turn rate, rad/s."
    )
    max_goal_distance_m: float = Field(
        5.0,
        gt=0,
        le=20.0,
        description="Farthest a go-to goal may be from the robot when it is commanded, m.",
    )
    goal_beyond_limit: Literal["refuse", "clamp"] = Field(
        "refuse",
        description="What to do with a goal farther than max_goal_distance_m: 'refuse' ends the "
        "behavior as failed (safe against a mislocalised tag); 'clamp' walks towards it, at most "
        "max_goal_distance_m per command.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_fixed_deadlines(cls, data: Any) -> Any:
        # Deadlines used to be set here; a fixed one ignores the braking time (issue 11).
        if isinstance(data, dict):
            for key in ("velocity_deadline_s", "goto_deadline_s"):
                if key in data:
                    raise ValueError(
                        f"{key} is no longer set here: every command's deadline is derived from "
                        "the agent's stop promise and the robot's braking (safety.stop_within_s, "
                        "behaviors/deadman.py); remove it"
                    )
        return data


@dataclass(frozen=True)
class Refused:
    """A command the caps would not let through, and why."""

    command: MotionCommand
    reason: str


_DISTANCE_SLACK_M = 1e-6  # a goal placed exactly at the limit by a clamp is within it


def cap_command(
    command: MotionCommand, limits: MotionLimits, pose: RobotPose | None, stop: StopBudget
) -> MotionCommand | Refused:
    """`command` within `limits`, or `Refused` (a go-to goal beyond `max_goal_distance_m`).

    Velocities are scaled down to `max_speed_mps` (keeping their direction) and turn rates
    clipped; a go-to gets speed caps no looser than the limits; every motion command gets a
    deadline the stop promise allows at its (capped) speed (`StopBudget.bound`). Goal distance
    is checked for odom goals, the frame the pose is in.
    """
    if isinstance(command, Velocity):
        vx, vy = command.vx, command.vy
        speed = math.hypot(vx, vy)
        if speed > limits.max_speed_mps:
            vx, vy = vx * limits.max_speed_mps / speed, vy * limits.max_speed_mps / speed
        vyaw = max(-limits.max_yaw_rate_rps, min(limits.max_yaw_rate_rps, command.vyaw))
        return stop.bound(replace(command, vx=vx, vy=vy, vyaw=vyaw))
    if isinstance(command, GoTo):
        if command.frame == "odom" and pose is not None:
            distance = math.hypot(command.x - pose.x, command.y - pose.y)
            if distance > limits.max_goal_distance_m + _DISTANCE_SLACK_M:
                return Refused(
                    command,
                    f"goal {distance:.1f} m away exceeds max_goal_distance_m "
                    f"{limits.max_goal_distance_m:.1f}",
                )
        linear = limits.max_speed_mps if command.max_linear_mps is None else command.max_linear_mps
        angular = (
            limits.max_yaw_rate_rps if command.max_angular_rps is None else command.max_angular_rps
        )
        return stop.bound(
            replace(
                command,
                max_linear_mps=min(linear, limits.max_speed_mps),
                max_angular_rps=min(angular, limits.max_yaw_rate_rps),
            )
        )
    return command
