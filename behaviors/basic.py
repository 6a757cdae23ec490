"""One-shot posture behaviors (stand, sit, stop) and hold (stand still for a while)."""

from __future__ import annotations

from pydantic import Field

from behaviors.commands import MotionCommand, Sit, Stand, Stop
from behaviors.geometry import RobotPose
from behaviors.registry import Behavior, BehaviorContext, BehaviorParams, register


class SettleParams(BehaviorParams):
    settle_s: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description="Wait this long after sending the command before finishing, so the next "
        "step of a sequence starts once the posture change is done (Spot takes ~1-2 s).",
    )


class _OneShot(Behavior):
    """Send one command, then finish after the settle time."""

    def command(self) -> MotionCommand:
        raise NotImplementedError

    def __init__(self, params: BehaviorParams, ctx: BehaviorContext) -> None:
        super().__init__(params, ctx)
        self._sent_at: float | None = None

    def step(self, now: float, pose: RobotPose) -> list[MotionCommand]:
        out: list[MotionCommand] = []
        if self._sent_at is None:
            self._sent_at = now
            out.append(self.command())
        settle = getattr(self.params, "settle_s", 0.0)
        if now - self._sent_at >= settle:
            self.finish("succeeded")
        return out


@register
class StandBehavior(_OneShot):
    name = "stand"
    summary = "Stand up (or stay standing)."
    Params = SettleParams

    def command(self) -> MotionCommand:
        return Stand()


@register
class SitBehavior(_OneShot):
    name = "sit"
    summary = "Sit down."
    Params = SettleParams

    def command(self) -> MotionCommand:
        return Sit()


class StopParams(BehaviorParams):
    pass


@register
class StopBehavior(_OneShot):
    name = "stop"
    summary = "Stop walking now; the robot keeps standing."
    Params = StopParams

    def command(self) -> MotionCommand:
        return Stop()


class HoldParams(BehaviorParams):
    duration_s: float | None = Field(
        None,
        gt=0.0,
        le=3600.0,
        description="How long to stand still, s. None: until stopped, pre-empted, or (for a "
        "rule with while_cue_present) until the cue clears.",
    )


@register
class HoldBehavior(Behavior):
    name = "hold"
    summary = (
        "Stop walking and stand still for a duration, keeping lower-priority rules from moving "
        "the robot meanwhile."
    )
    Params = HoldParams

    def __init__(self, params: BehaviorParams, ctx: BehaviorContext) -> None:
        super().__init__(params, ctx)
        self._since: float | None = None

    def step(self, now: float, pose: RobotPose) -> list[MotionCommand]:
        assert isinstance(self.params, HoldParams)
        out: list[MotionCommand] = []
        if self._since is None:
            self._since = now
            out.append(Stop())
        if self.params.duration_s is not None and now - self._since >= self.params.duration_s:
            self.finish("succeeded", "held for its duration")
        return out
