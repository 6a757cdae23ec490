"""Settings of the pipeline's safety: frame age, watchdog, control rate, caps and the deadman.

Section `safety:` of the agent config (`agent/config.py` composes it).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from behaviors.deadman import StopBudget
from behaviors.limits import MotionLimits
from configs.loading import StrictModel


class SafetyConfig(StrictModel):
    """Bounds that keep the robot from acting on old information or moving unsupervised."""

    max_frame_age_s: float = Field(
        0.5, gt=0, description="Frames older than this (robot capture to detection) are dropped."
    )
    watchdog_s: float = Field(
        1.0,
        gt=0,
        description="No fresh detection result for this long stops the robot and halts behaviors.",
    )
    watchdog_startup_grace_s: float = Field(
        3.0,
        ge=0,
        description="Extra time the watchdog allows for the first detection after start "
        "(streams connecting); nothing can fire a rule before that first detection anyway.",
    )
    tick_hz: float = Field(10.0, gt=0, le=100, description="Rate of the behavior control loop.")
    detect_workers: int = Field(
        2, ge=1, le=16, description="Detector threads (each with its own interpreter)."
    )
    # The caps carry the names of the rules files' `limits:` (behaviors/limits.py): one set of
    # names, one function (`cap_command`) applying them.
    max_speed_mps: float = Field(
        1.0, gt=0, le=1.6, description="Cap on commanded linear speed (Spot walks up to 1.6 m/s)."
    )
    max_yaw_rate_rps: float = Field(1.0, gt=0, le=2.0, description="Cap on commanded turn rate.")
    max_goal_distance_m: float = Field(
        5.0, gt=0, le=20.0, description="Go-to goals farther than this from the robot are refused."
    )
    stop_within_s: float = Field(
        1.0,
        gt=0,
        le=1.0,
        description="The deadman promise: if the agent dies or goes quiet, the body is still "
        "within this long of its last command. Every motion command's deadline is derived from "
        "it, minus the braking time at the command's speed (behaviors/deadman.py).",
    )
    braking_decel_mps2: float = Field(
        2.0,
        gt=0,
        le=10.0,
        description="How hard the robot brakes when a command's deadline passes, m/s^2 (the "
        "sim's Spot brakes at 2.0). Only a measured value on the robot may raise it.",
    )
    braking_decel_rps2: float = Field(
        3.0, gt=0, le=20.0, description="The same for turning, rad/s^2 (the sim: 3.0)."
    )
    stop_reaction_s: float = Field(
        0.1,
        ge=0,
        lt=1.0,
        description="Time the robot takes to act on a passed deadline: its control step plus "
        "the clock-sync error of the deadline.",
    )
    reconnect_backoff_s: float = Field(
        0.5, gt=0, description="First wait before reconnecting after the robot became unreachable."
    )
    reconnect_backoff_max_s: float = Field(
        8.0, gt=0, description="Longest wait between reconnection attempts."
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed_or_removed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if "max_goto_distance_m" in data:
                raise ValueError("max_goto_distance_m is now max_goal_distance_m (the name the "
                                 "rules files' limits use); rename it")
            if "max_command_duration_s" in data:
                raise ValueError("max_command_duration_s is no longer set: every command's deadline "
                                 "comes from the stop promise (stop_within_s) and the braking; "
                                 "remove it")
        return data

    @model_validator(mode="after")
    def _backoff_bounds_ordered(self) -> SafetyConfig:
        if self.reconnect_backoff_max_s < self.reconnect_backoff_s:
            raise ValueError("reconnect_backoff_max_s must be >= reconnect_backoff_s")
        return self

    @model_validator(mode="after")
    def _caps_keep_the_stop_promise(self) -> SafetyConfig:
        problem = self.stop_budget().shortfall(
            self.max_speed_mps, self.max_yaw_rate_rps, 1.0 / self.tick_hz
        )
        if problem is not None:
            raise ValueError(
                f"max_speed_mps/max_yaw_rate_rps cannot keep the stop promise: {problem}; lower "
                "them (or raise tick_hz)"
            )
        return self

    def motion_limits(self) -> MotionLimits:
        """The caps, as the one cap function (`behaviors.limits.cap_command`) takes them."""
        return MotionLimits(
            max_speed_mps=self.max_speed_mps,
            max_yaw_rate_rps=self.max_yaw_rate_rps,
            max_goal_distance_m=self.max_goal_distance_m,
            goal_beyond_limit="refuse",
        )

    def stop_budget(self) -> StopBudget:
        """The promise and the robot's braking, as the deadline derivation takes them."""
        return StopBudget(
            stop_within_s=self.stop_within_s,
            linear_decel_mps2=self.braking_decel_mps2,
            angular_decel_rps2=self.braking_decel_rps2,
            reaction_s=self.stop_reaction_s,
        )
