"""Motion caps every behavior obeys (the `limits:` section of a rules file)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from configs.loading import StrictModel


class MotionLimits(StrictModel):
    """Speed and distance caps applied to every command the behaviors produce (deadlines come
    from the stop promise: behaviors/deadman.py)."""

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
