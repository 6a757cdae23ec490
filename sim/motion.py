"""The body's mobility physics: from the active command to a velocity, under Spot's limits.

Pure functions on a small mutable `PlanarMotion` (pose and velocity in odom), so the arithmetic
can be read (and checked) apart from the locking, threading and power/posture bookkeeping of
`sim.world`: velocity commands in any frame are clamped per body axis, SE2 trajectories follow
a speed profile that can always brake in time, and speeding up or slowing down is
acceleration-limited (linear as a vector, yaw separately). Standing up and sitting down move
the body height along a linear ramp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bosdyn.client.math_helpers import angle_diff

from sim.command_records import CommandKind, CommandRecord, FeedbackStatus, TrajStatus
from sim.poses import VISION_TFORM_ODOM, wrap_angle
from sim.spot_limits import SpotLimits

Velocity = tuple[float, float, float]  # (vx, vy) in odom, m/s, and wz, rad/s


@dataclass
class PlanarMotion:
    """The body's pose on the floor (odom) and its velocity (odom frame)."""

    x: float
    y: float
    yaw: float
    vx: float = 0.0
    vy: float = 0.0
    wz: float = 0.0

    def halt(self) -> None:
        self.vx = self.vy = self.wz = 0.0


@dataclass
class HeightRamp:
    """Standing up or sitting down: the body height goes linearly from one height to another."""

    start_ns: int
    from_height: float
    to_height: float
    duration_ns: int

    def at(self, now: int) -> tuple[float, bool]:
        """(body height at `now`, whether the ramp is over)."""
        frac = min(1.0, (now - self.start_ns) / self.duration_ns)
        return self.from_height + frac * (self.to_height - self.from_height), frac >= 1.0


def speed_caps(limits: SpotLimits, record: CommandRecord | None) -> Velocity:
    """Per-axis speed caps: the body's, lowered by the command's MobilityParams.vel_limit."""
    caps = (limits.max_vx, limits.max_vy, limits.max_wz)
    if record is not None and record.max_speed is not None:
        caps = tuple(min(c, m) if m > 0 else c for c, m in zip(caps, record.max_speed))  # type: ignore[assignment]
    return caps


def desired_velocity(record: CommandRecord | None, body: PlanarMotion, limits: SpotLimits, now: int) -> Velocity:
    """What the active mobility command asks for now; a command past its end time times out."""
    if record is None or record.status != FeedbackStatus.STATUS_PROCESSING:
        return 0.0, 0.0, 0.0
    if record.end_time_ns is not None and now >= record.end_time_ns:
        # The command's end time (robot clock) has passed: stop and hold the stand.
        record.status = FeedbackStatus.STATUS_COMMAND_TIMED_OUT
        return 0.0, 0.0, 0.0
    cap_x, cap_y, cap_w = speed_caps(limits, record)
    if record.kind == CommandKind.VELOCITY:
        vx, vy, wz = record.velocity
        if record.velocity_frame in ("odom", "vision"):
            if record.velocity_frame == "vision":
                # A velocity in vision, rotated into odom.
                c, s = math.cos(-VISION_TFORM_ODOM.angle), math.sin(-VISION_TFORM_ODOM.angle)
                vx, vy = c * vx - s * vy, s * vx + c * vy
            c, s = math.cos(-body.yaw), math.sin(-body.yaw)
            vx, vy = c * vx - s * vy, s * vx + c * vy  # into body to apply the limits
        bx = min(max(vx, -cap_x), cap_x)
        by = min(max(vy, -cap_y), cap_y)
        wz = min(max(wz, -cap_w), cap_w)
        c, s = math.cos(body.yaw), math.sin(body.yaw)
        return c * bx - s * by, s * bx + c * by, wz
    if record.kind == CommandKind.SE2_TRAJECTORY and record.goal_odom is not None:
        return trajectory_velocity(record.goal_odom, body, limits, (cap_x, cap_y, cap_w))
    return 0.0, 0.0, 0.0


def trajectory_velocity(
    goal: tuple[float, float, float], body: PlanarMotion, limits: SpotLimits, caps: Velocity
) -> Velocity:
    """Holonomic go-to-goal: speed profile that can always brake in time, P-control at the end."""
    cap_x, cap_y, cap_w = caps
    dx, dy = goal[0] - body.x, goal[1] - body.y
    dist = math.hypot(dx, dy)
    dyaw = angle_diff(goal[2], body.yaw)
    speed = min(math.sqrt(2.0 * limits.max_linear_accel * dist) * 0.8, 2.0 * dist)
    if dist > 1e-9:
        ux, uy = dx / dist, dy / dist
    else:
        ux = uy = 0.0
    # Into the body frame to respect the per-axis caps, scaling the vector (keeps direction).
    c, s = math.cos(body.yaw), math.sin(body.yaw)
    bx, by = (c * ux + s * uy) * speed, (-s * ux + c * uy) * speed
    scale = 1.0
    if abs(bx) > cap_x:
        scale = min(scale, cap_x / abs(bx))
    if abs(by) > cap_y:
        scale = min(scale, cap_y / abs(by))
    bx, by = bx * scale, by * scale
    wz = math.copysign(
        min(math.sqrt(2.0 * limits.max_angular_accel * abs(dyaw)) * 0.8, 2.5 * abs(dyaw), cap_w), dyaw
    )
    return c * bx - s * by, s * bx + c * by, wz


def update_trajectory_feedback(record: CommandRecord, body: PlanarMotion, limits: SpotLimits) -> None:
    """Going to / near / at the goal, and whether the body has settled there."""
    if record.goal_odom is None:
        return
    dist = math.hypot(record.goal_odom[0] - body.x, record.goal_odom[1] - body.y)
    dyaw = abs(angle_diff(record.goal_odom[2], body.yaw))
    if dist <= limits.goal_tolerance_m and dyaw <= limits.goal_tolerance_rad:
        record.detail_status = TrajStatus.STATUS_AT_GOAL
    elif dist <= limits.near_goal_m and dyaw <= 0.2:
        record.detail_status = TrajStatus.STATUS_NEAR_GOAL
    else:
        record.detail_status = TrajStatus.STATUS_GOING_TO_GOAL
    moving = math.hypot(body.vx, body.vy) > limits.settled_speed or abs(body.wz) > limits.settled_speed
    settled = record.detail_status == TrajStatus.STATUS_AT_GOAL and not moving
    record.body_movement_status = TrajStatus.BODY_STATUS_SETTLED if settled else TrajStatus.BODY_STATUS_MOVING


def accelerate_and_move(body: PlanarMotion, want: Velocity, limits: SpotLimits, dt: float) -> None:
    """Change the velocity towards `want` within the acceleration limits, then move for `dt`."""
    want_x, want_y, want_w = want
    # Acceleration limits: linear as a vector, yaw separately.
    ax, ay = want_x - body.vx, want_y - body.vy
    dv = math.hypot(ax, ay)
    max_dv = limits.max_linear_accel * dt
    if dv > max_dv:
        ax, ay = ax * max_dv / dv, ay * max_dv / dv
    body.vx += ax
    body.vy += ay
    max_dw = limits.max_angular_accel * dt
    body.wz += min(max(want_w - body.wz, -max_dw), max_dw)
    body.x += body.vx * dt
    body.y += body.vy * dt
    body.yaw = wrap_angle(body.yaw + body.wz * dt)
