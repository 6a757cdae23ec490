"""go_to_fiducial: walk to a point in front of an AprilTag, facing it."""

from __future__ import annotations

import math
from collections import deque

from pydantic import Field

from behaviors.commands import GoTo, MotionCommand
from behaviors.driving import MotionLatch
from behaviors.geometry import RobotPose, circular_mean, wrap_angle
from behaviors.registry import Behavior, BehaviorContext, BehaviorParams, register
from perception.detection import Sighting


class GoToFiducialParams(BehaviorParams):
    tag_id: int | None = Field(
        None, ge=0, description="AprilTag id to walk to. None: the tag that fired the rule."
    )
    distance_m: float = Field(
        1.0,
        ge=0.3,
        le=5.0,
        description="Stop this far in front of the tag, along its face normal, m.",
    )
    position_tolerance_m: float = Field(
        0.1, gt=0.0, le=1.0, description="Arrived when this close to the goal, m."
    )
    yaw_tolerance_deg: float = Field(
        10.0, gt=0.0, le=45.0, description="... and facing the tag within this, deg."
    )
    timeout_s: float = Field(60.0, gt=0.0, le=600.0, description="Give up after this long, s.")
    max_sighting_age_s: float = Field(
        2.0,
        gt=0.0,
        le=30.0,
        description="Sightings of the tag older than this are not used to place the goal, s.",
    )
    smoothing: int = Field(
        5,
        ge=1,
        le=50,
        description="Number of latest tag pose estimates averaged into the goal (steadies "
        "re-targeting against pose noise).",
    )
    max_speed_mps: float | None = Field(
        None,
        gt=0.0,
        description="Lower walking speed cap for this behavior, m/s (limits still apply).",
    )


def _tag_label(params: GoToFiducialParams, ctx: BehaviorContext) -> str:
    if params.tag_id is not None:
        return f"tag:{params.tag_id}"
    if ctx.trigger is not None and ctx.trigger.label.startswith("tag:"):
        return ctx.trigger.label
    got = "an operator launch" if ctx.trigger is None else f"cue sighting {ctx.trigger.label!r}"
    raise ValueError(
        f"go_to_fiducial: params.tag_id is required (the behavior was started by {got}, "
        "which names no tag)"
    )


@register
class GoToFiducialBehavior(Behavior):
    name = "go_to_fiducial"
    summary = (
        "Walk to distance_m in front of an AprilTag along its face normal, facing it; the goal "
        "is re-placed as fresh sightings refine the tag's pose. Deadline-bounded go-to "
        "commands are re-sent every tick."
    )
    Params = GoToFiducialParams

    def __init__(self, params: BehaviorParams, ctx: BehaviorContext) -> None:
        super().__init__(params, ctx)
        assert isinstance(params, GoToFiducialParams)
        self.p = params
        self.label = _tag_label(params, ctx)
        self.latch = MotionLatch()
        self._start: float | None = None
        self._estimates: deque[tuple[float, float, float]] = deque(maxlen=params.smoothing)
        self._last_estimate_time: float | None = None
        self._clamping = False
        self.goal: tuple[float, float, float] | None = None  # x, y, yaw in odom

    def _take(self, sighting: Sighting) -> None:
        if sighting.position_odom is None or sighting.yaw_odom is None:
            return
        x, y, _ = sighting.position_odom
        self._estimates.append((float(x), float(y), float(sighting.yaw_odom)))
        self._last_estimate_time = sighting.time_local

    def _refresh(self, now: float) -> None:
        fresh = [
            s
            for s in self.ctx.memory.recent(self.label, now, self.p.max_sighting_age_s)
            if self._last_estimate_time is None or s.time_local > self._last_estimate_time
        ]
        for s in sorted(fresh, key=lambda s: s.time_local):
            self._take(s)

    def _place_goal(self) -> tuple[float, float, float]:
        tx = sum(e[0] for e in self._estimates) / len(self._estimates)
        ty = sum(e[1] for e in self._estimates) / len(self._estimates)
        normal = circular_mean([e[2] for e in self._estimates])  # where the tag's face points
        return (
            tx + self.p.distance_m * math.cos(normal),
            ty + self.p.distance_m * math.sin(normal),
            wrap_angle(normal + math.pi),  # face the tag
        )

    def _take_trigger(self, now: float) -> None:
        """On the first step: the (fresh) sighting that fired the rule is the first estimate."""
        trigger = self.ctx.trigger
        if (
            trigger is not None
            and trigger.label == self.label
            and now - trigger.time_local <= self.p.max_sighting_age_s
        ):
            self._take(trigger)

    def _within_goal_distance(
        self, now: float, pose: RobotPose, goal: tuple[float, float, float], dist: float
    ) -> tuple[float, float, float] | None:
        """`goal`, or pulled in to max_goal_distance_m ("clamp"); None when refused ("refuse")."""
        limits = self.ctx.limits
        if dist <= limits.max_goal_distance_m:
            self._clamping = False
            return goal
        gx, gy, gyaw = goal
        data = {
            "label": self.label,
            "goal": [gx, gy, gyaw],
            "distance_m": dist,
            "max_goal_distance_m": limits.max_goal_distance_m,
        }
        if limits.goal_beyond_limit == "refuse":
            self.ctx.emit("goal_refused", now, data)
            self.finish(
                "failed",
                f"goal {dist:.1f} m away exceeds max_goal_distance_m "
                f"{limits.max_goal_distance_m:g}",
            )
            return None
        if not self._clamping:  # said once per stretch of clamping, not every tick
            self.ctx.emit("goal_clamped", now, data)
        self._clamping = True
        scale = limits.max_goal_distance_m / dist
        return pose.x + (gx - pose.x) * scale, pose.y + (gy - pose.y) * scale, gyaw

    def _go_to(self, goal: tuple[float, float, float]) -> list[MotionCommand]:
        p, limits = self.p, self.ctx.limits
        speed = (
            limits.max_speed_mps
            if p.max_speed_mps is None
            else min(p.max_speed_mps, limits.max_speed_mps)
        )
        gx, gy, gyaw = goal
        return self.latch.drive(
            GoTo(
                x=gx,
                y=gy,
                yaw=gyaw,
                frame="odom",
                duration_s=self.ctx.stop.deadline_s(speed, limits.max_yaw_rate_rps),
                max_linear_mps=speed,
                max_angular_rps=limits.max_yaw_rate_rps,
            )
        )

    def step(self, now: float, pose: RobotPose) -> list[MotionCommand]:
        p = self.p
        if self._start is None:
            self._start = now
            self._take_trigger(now)
        self._refresh(now)
        if not self._estimates:
            self.finish(
                "failed",
                f"{self.label} not seen with a pose in the last {p.max_sighting_age_s:g} s",
            )
            return self.latch.halt()
        if now - self._start > p.timeout_s:
            self.finish("failed", f"goal not reached after {p.timeout_s:g} s")
            return self.latch.halt()

        gx, gy, gyaw = self.goal = self._place_goal()
        dist = math.hypot(gx - pose.x, gy - pose.y)
        if dist <= p.position_tolerance_m and abs(wrap_angle(gyaw - pose.yaw)) <= math.radians(
            p.yaw_tolerance_deg
        ):
            self.finish("succeeded", f"{dist:.2f} m from the goal in front of {self.label}")
            return []
        target = self._within_goal_distance(now, pose, self.goal, dist)
        return self.latch.halt() if target is None else self._go_to(target)
