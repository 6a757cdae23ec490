"""Behaviors that steer toward a tracked object: turn_toward and follow."""

from __future__ import annotations

import math

from pydantic import Field

from behaviors.commands import MotionCommand
from behaviors.driving import MotionLatch, capped_velocity
from behaviors.geometry import RobotPose, range_and_bearing
from behaviors.memory import TargetTrack
from behaviors.registry import Behavior, BehaviorContext, BehaviorParams, register


def _target_label(label: str | None, ctx: BehaviorContext, behavior: str) -> str:
    if label is not None:
        return label
    if ctx.trigger is not None:
        return ctx.trigger.label
    raise ValueError(
        f"{behavior}: params.label is required when the behavior is not fired by a cue "
        "(e.g. label: person)"
    )


class TurnTowardParams(BehaviorParams):
    label: str | None = Field(
        None,
        min_length=1,
        description="What to turn toward: a COCO label or 'tag:<id>'. None: the object that "
        "fired the rule.",
    )
    tolerance_deg: float = Field(
        5.0, gt=0.0, le=45.0, description="Done when the target's bearing is within this, deg."
    )
    angular_gain: float = Field(
        1.5, gt=0.0, le=10.0, description="Turn rate per radian of bearing error, 1/s."
    )
    min_yaw_rate_rps: float = Field(
        0.15,
        ge=0.0,
        le=1.0,
        description="Smallest turn rate commanded, rad/s, so the last degrees do not crawl.",
    )
    lost_timeout_s: float = Field(
        2.0, gt=0.0, le=30.0, description="Give up when the target is unseen this long, s."
    )
    timeout_s: float = Field(15.0, gt=0.0, le=120.0, description="Give up after this long, s.")
    gate_m: float = Field(
        1.0,
        gt=0.0,
        le=5.0,
        description="A new sighting farther than this from the tracked target is another "
        "object, m.",
    )


@register
class TurnTowardBehavior(Behavior):
    name = "turn_toward"
    summary = "Turn in place until the target is straight ahead."
    Params = TurnTowardParams

    def __init__(self, params: BehaviorParams, ctx: BehaviorContext) -> None:
        super().__init__(params, ctx)
        assert isinstance(params, TurnTowardParams)
        self.p = params
        self.track = TargetTrack(_target_label(params.label, ctx, self.name), params.gate_m)
        self.latch = MotionLatch()
        self._start: float | None = None

    def step(self, now: float, pose: RobotPose) -> list[MotionCommand]:
        if self._start is None:
            self._start = now
            if self.ctx.trigger is not None:
                self.track.seed(self.ctx.trigger, pose)
        self.track.update(self.ctx.memory, now, pose, self.p.lost_timeout_s)
        if now - self._start > self.p.timeout_s:
            self.finish("failed", f"not facing the target after {self.p.timeout_s:g} s")
            return self.latch.halt()
        if self.track.position is None or self.track.last_seen is None:
            if now - self._start > self.p.lost_timeout_s:
                self.finish("failed", f"no {self.track.label} with a known position in view")
            return self.latch.halt()
        if now - self.track.last_seen > self.p.lost_timeout_s:
            self.finish("failed", f"{self.track.label} lost")
            return self.latch.halt()
        _, bearing = range_and_bearing(pose, *self.track.position)
        if abs(bearing) <= math.radians(self.p.tolerance_deg):
            self.finish("succeeded", f"facing {self.track.label}")
            return self.latch.halt()
        rate = self.p.angular_gain * bearing
        rate = math.copysign(max(abs(rate), self.p.min_yaw_rate_rps), bearing)
        return self.latch.drive(capped_velocity(0.0, 0.0, rate, self.ctx.limits, self.ctx.stop))


class FollowParams(BehaviorParams):
    label: str = Field("person", min_length=1, description="COCO label of what to follow.")
    distance_m: float = Field(
        1.5, ge=0.5, le=10.0, description="Distance to keep from the target, m."
    )
    distance_tolerance_m: float = Field(
        0.2,
        gt=0.0,
        le=2.0,
        description="Settled (stopped) while the distance is within this of distance_m, m; the "
        "robot walks again when the error exceeds twice this.",
    )
    bearing_tolerance_deg: float = Field(
        10.0,
        gt=0.0,
        le=60.0,
        description="Settled while the target's bearing is within this, deg (twice this to "
        "turn again).",
    )
    linear_gain: float = Field(
        0.8, gt=0.0, le=5.0, description="Forward speed per metre of distance error, 1/s."
    )
    angular_gain: float = Field(
        1.5, gt=0.0, le=10.0, description="Turn rate per radian of bearing error, 1/s."
    )
    max_speed_mps: float | None = Field(
        None, gt=0.0, description="Lower speed cap for this behavior, m/s (limits still apply)."
    )
    allow_reverse: bool = Field(
        False,
        description="Back away when the target comes closer than distance_m. Off by default: "
        "the front cameras cannot see behind the robot.",
    )
    stale_after_s: float = Field(
        0.5,
        gt=0.0,
        le=5.0,
        description="Stop walking (and wait) when the target has not been seen for this long, s.",
    )
    lost_timeout_s: float = Field(
        3.0, gt=0.0, le=60.0, description="Finish when the target has not been seen this long, s."
    )
    gate_m: float = Field(
        1.0,
        gt=0.0,
        le=5.0,
        description="A new sighting farther than this from the tracked target is someone else, m.",
    )


@register
class FollowBehavior(Behavior):
    name = "follow"
    summary = (
        "Follow the tracked target (a person by default) at a distance with a P-controller on "
        "distance and bearing; settle and stop when it stops; finish when it is lost."
    )
    Params = FollowParams

    def __init__(self, params: BehaviorParams, ctx: BehaviorContext) -> None:
        super().__init__(params, ctx)
        assert isinstance(params, FollowParams)
        self.p = params
        self.track = TargetTrack(params.label, params.gate_m)
        self.latch = MotionLatch()
        self._start: float | None = None
        self._settled = False

    def step(self, now: float, pose: RobotPose) -> list[MotionCommand]:
        p = self.p
        if self._start is None:
            self._start = now
            if self.ctx.trigger is not None:
                self.track.seed(self.ctx.trigger, pose)
        self.track.update(self.ctx.memory, now, pose, p.lost_timeout_s)
        last_seen = self.track.last_seen
        if self.track.position is None or last_seen is None:
            if now - self._start > p.lost_timeout_s:
                self.finish("failed", f"no {p.label} with a known position in view")
            return self.latch.halt()
        unseen = now - last_seen
        if unseen > p.lost_timeout_s:
            self.finish("succeeded", f"{p.label} lost for {unseen:.1f} s")
            return self.latch.halt()
        if unseen > p.stale_after_s:
            # Do not walk on old information; wait for the target to show again.
            return self.latch.halt()

        distance, bearing = range_and_bearing(pose, *self.track.position)
        error = distance - p.distance_m
        # Hysteresis: once settled, the target must move twice the tolerance to start again,
        # so sighting noise does not make the robot twitch.
        scale = 2.0 if self._settled else 1.0
        if p.allow_reverse:
            close_enough = abs(error) <= p.distance_tolerance_m * scale
        else:
            close_enough = error <= p.distance_tolerance_m * scale  # too close: stay, never back up
        facing = abs(bearing) <= math.radians(p.bearing_tolerance_deg) * scale
        if close_enough and facing:
            self._settled = True
            return self.latch.halt()
        self._settled = False
        vx = 0.0
        if not close_enough:
            # Walk only as much as the target is in front: turn first when it is to the side.
            vx = p.linear_gain * error * max(math.cos(bearing), 0.0)
        vyaw = p.angular_gain * bearing
        return self.latch.drive(capped_velocity(vx, 0.0, vyaw, self.ctx.limits, self.ctx.stop, p.max_speed_mps))
