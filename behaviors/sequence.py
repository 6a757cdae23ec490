"""sequence: run behaviors one after another (e.g. go_to_fiducial, then sit)."""

from __future__ import annotations

from pydantic import Field

from behaviors.commands import MotionCommand
from behaviors.geometry import RobotPose
from behaviors.registry import Behavior, BehaviorCall, BehaviorContext, BehaviorParams, register


class SequenceParams(BehaviorParams):
    steps: list[BehaviorCall] = Field(
        min_length=1,
        max_length=32,
        description="Behaviors to run in order, each {behavior: name, params: {...}}. A failed "
        "step ends the sequence.",
    )


@register
class SequenceBehavior(Behavior):
    name = "sequence"
    summary = "Run steps in order; the next starts in the same tick the previous one finishes."
    Params = SequenceParams

    def __init__(self, params: BehaviorParams, ctx: BehaviorContext) -> None:
        super().__init__(params, ctx)
        assert isinstance(params, SequenceParams)
        # Built up front so a step that cannot start (e.g. go_to_fiducial without a tag in an
        # operator launch) fails the launch, not the robot halfway through.
        self.steps = [ctx.create(call) for call in params.steps]
        self.index = 0
        self._announced = -1

    @property
    def current(self) -> Behavior | None:
        return self.steps[self.index] if self.index < len(self.steps) else None

    def step(self, now: float, pose: RobotPose) -> list[MotionCommand]:
        out: list[MotionCommand] = []
        while (current := self.current) is not None:
            if self._announced != self.index:
                self._announced = self.index
                self.ctx.emit("sequence_step", now, {"index": self.index, "behavior": current.name})
            out += current.step(now, pose)
            if not current.done:
                return out
            if current.outcome == "failed":
                self.finish(
                    "failed", f"step {self.index} ({current.name}) failed: {current.detail}"
                )
                return out
            self.index += 1
        self.finish("succeeded", f"{len(self.steps)} steps done")
        return out
