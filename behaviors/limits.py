"""Motion caps every behavior obeys (the `limits:` section of a rules file)."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from configs.loading import StrictModel


class MotionLimits(StrictModel):
    """Speed, distance and deadline caps applied to every command the behaviors produce."""

    model_config = ConfigDict(frozen=True)

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
    velocity_deadline_s: float = Field(
        0.6,
        gt=0,
        le=1.0,
        description="Deadline of each velocity command (deadman): re-sent every tick while a "
        "behavior drives, so the robot stops this soon after the agent stops sending.",
    )
    goto_deadline_s: float = Field(
        1.0,
        gt=0,
        le=1.0,
        description="Deadline of each go-to command, re-sent every tick (deadman, as above).",
    )
