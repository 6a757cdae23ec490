"""`PipelineObserver`: the seam through which recorders, replay summaries and live views see
what the pipeline does, in the order it does it, without the pipeline knowing who listens.

The pipeline calls every observer from its event loop, at these moments:
- `frame_taken`: a frame was taken from the source for detection;
- `result_observed`: the cue engine got a detection result (`now`: the pipeline-clock time);
- `control_step`: a control step starts (`trigger` "tick": periodic; "cue": reaction to a
  result that raised a cue);
- `robot_status`: the status that step acted on, or the error it got instead;
- `command`: a command was sent ("sent"), refused by the caps ("refused: why"), or failed
  ("failed: why");
- `event`: every `AgentEvent` (agent and engine events).

Observers must return quickly and never raise: they run on the control path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.core.events import AgentEvent
    from agent.core.robot import RobotStatus
    from behaviors.commands import MotionCommand
    from perception.detection import FrameResult
    from perception.frame import Frame


class PipelineObserver:
    """Base class: override what you need; every method does nothing by default."""

    def frame_taken(self, frame: Frame) -> None:
        pass

    def result_observed(self, now: float, result: FrameResult) -> None:
        pass

    def control_step(self, now: float, trigger: str) -> None:
        pass

    def robot_status(
        self, now: float, status: RobotStatus | None, error: BaseException | None
    ) -> None:
        pass

    def command(self, now: float, command: MotionCommand, outcome: str) -> None:
        pass

    def event(self, event: AgentEvent) -> None:
        pass
