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
- `event`: every `AgentEvent` (agent and engine events);
- `operator_input`: an operator's launch, stop, pause or resume, as the engine took it (under
  the same lock and on the same clock as observations and control steps, so a recording keeps
  it in order and replay can give it to the engine again).

Observers must return quickly and never raise: they run on the control path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from agent.core.events import AgentEvent
    from agent.core.seams import RobotStatus
    from behaviors.commands import MotionCommand
    from perception.detection import FrameResult
    from perception.frame import Frame


@dataclass(frozen=True)
class OperatorInput:
    """One operator request the engine took: `launch` (behavior `name` with `params`), `stop`
    (with `reason`), `pause_cues` or `resume_cues`."""

    kind: Literal["launch", "stop", "pause_cues", "resume_cues"]
    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


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

    def operator_input(self, now: float, op: OperatorInput) -> None:
        pass
