"""Planar geometry shared by the cue filters and the behaviors (odom frame, metres, radians)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RobotPose:
    """The robot body in the odom frame: position (m) and heading (rad, counter-clockwise)."""

    x: float
    y: float
    yaw: float


def wrap_angle(angle: float) -> float:
    """`angle` folded into [-pi, pi)."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi


def to_body(pose: RobotPose, x: float, y: float) -> tuple[float, float]:
    """An odom point in the body frame of `pose`: (forward, left) in metres."""
    dx, dy = x - pose.x, y - pose.y
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    return c * dx + s * dy, -s * dx + c * dy


def range_and_bearing(pose: RobotPose, x: float, y: float) -> tuple[float, float]:
    """Distance (m) and bearing (rad, 0 ahead, positive to the left) of an odom point."""
    fwd, left = to_body(pose, x, y)
    return math.hypot(fwd, left), math.atan2(left, fwd)


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def circular_mean(angles: list[float]) -> float:
    """Mean heading of `angles` (rad), robust to the wrap at +-pi."""
    return math.atan2(sum(math.sin(a) for a in angles), sum(math.cos(a) for a in angles))
