"""What a recording holds, as replay reads it back: one item per recorded thing, in file order.

`agent.replay.mcap` reads them from a recording; `agent.replay.recorded_run` replays a live
run from them; the dry-run robot keeps the commands it is sent as `RecordedCommand` too, so a
live run's commands and a replay's compare item by item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.core.observers import OperatorInput
from agent.core.seams import RobotStatus
from behaviors.commands import MotionCommand
from perception.detection import FrameResult
from perception.frame import Frame


@dataclass(frozen=True)
class RecordedFrame:
    frame: Frame


@dataclass(frozen=True)
class RecordedObservation:
    """A detection result the live cue engine observed (engine input `step`)."""

    step: int
    time: float
    result: FrameResult


@dataclass(frozen=True)
class RecordedStep:
    """A control step of the live pipeline (engine input `step`): "tick" (periodic) or "cue"."""

    step: int
    time: float
    trigger: str


@dataclass(frozen=True)
class RecordedOperator:
    """An operator's input the live engine took (engine input `step`), given again in replay."""

    step: int
    time: float
    op: OperatorInput


@dataclass(frozen=True)
class RecordedStatus:
    """The robot status a live control step got, or the error it got instead."""

    time: float
    status: RobotStatus | None
    error_kind: str | None = None
    error_message: str = ""


@dataclass(frozen=True)
class RecordedEvent:
    kind: str
    time: float
    data: Any


@dataclass(frozen=True)
class RecordedCommand:
    """A command at the pipeline-clock time it was sent (or refused: `outcome` says why)."""

    time: float
    command: MotionCommand
    outcome: str = "sent"


RecordedItem = (
    RecordedFrame | RecordedObservation | RecordedStep | RecordedOperator | RecordedStatus
    | RecordedEvent | RecordedCommand
)
