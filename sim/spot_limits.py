"""How fast, how high and how quickly the simulated body may move: close to a real Spot's defaults.

A module of its own because both the body's state machine (heights, power and posture timings)
and its motion (speeds, accelerations, goal tolerances) read it, and tests build bodies with
other limits.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpotLimits:
    """Speed, acceleration, heights and timings close to a real Spot's defaults."""

    max_vx: float = 1.6  # m/s forward/backward
    max_vy: float = 0.8  # m/s sideways
    max_wz: float = 1.0  # rad/s yaw
    max_linear_accel: float = 2.0  # m/s^2
    max_angular_accel: float = 3.0  # rad/s^2
    stand_height: float = 0.50  # body origin above the floor when standing
    sit_height: float = 0.20
    min_body_height_offset: float = -0.15  # allowed MobilityParams.body_height range
    max_body_height_offset: float = 0.12
    stand_up_s: float = 0.8
    sit_down_s: float = 1.0
    power_on_s: float = 0.6
    power_off_s: float = 0.2
    goal_tolerance_m: float = 0.02  # SE2 trajectory "at goal"
    goal_tolerance_rad: float = 0.03
    near_goal_m: float = 0.3
    settled_speed: float = 0.02  # m/s and rad/s below which the body counts as settled
