"""The seams of the pipeline: where frames come from, what perceives them, what decides, what moves.

Every way of running the agent plugs into the same pipeline through these four:
- `FrameSource`: Spot's cameras (`agent.spot.camera_source.SpotCameraSource`), or a recording,
  a video or a folder (`agent.replay`). The pipeline owns the source it is given: it starts it,
  reads its stats and closes it.
- `PerceiverFactory`: one perceiver per detector thread (interpreters are not thread-safe);
  `perception.perceiver.Perceiver.process` in every real run, a fake in tests.
- `BehaviorEngine`: `behaviors.engine.CueEngine`: results and ticks in, commands out.
- `Robot`: `agent.spot.robot.SpotRobot` over gRPC, or `agent.replay.dry_run.DryRunRobot`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from behaviors.commands import MotionCommand
from behaviors.cues import CueEdge
from behaviors.geometry import RobotPose
from behaviors.results import EngineEvent, TickResult
from perception.detection import FrameResult
from perception.frame import Frame

# --- frames ------------------------------------------------------------------------------------


@runtime_checkable
class FrameSource(Protocol):
    """An async stream of frames from one or more cameras.

    Live sources yield the newest frame per camera as it arrives (`one_at_a_time` False: the
    pipeline detects on several threads, and frames that arrive meanwhile replace each other);
    replay sources yield recorded frames in order and decide the time between them
    (`one_at_a_time` True: the pipeline takes the next frame only once the previous one is
    observed and reacted to). Frames that could not be decoded are counted by the source and
    never yielded.
    """

    cameras: list[str]
    one_at_a_time: bool

    async def start(self) -> None: ...

    def frames(self) -> AsyncIterator[Frame]: ...

    def stats(self) -> dict[str, Any]:
        """Per-camera counters for the run report (may be empty)."""
        ...

    async def close(self) -> None: ...


# --- perception --------------------------------------------------------------------------------

PerceiveFrame = Callable[[Frame], FrameResult]
"""Frame in, sightings placed in the world out (`perception.perceiver.Perceiver.process`)."""
PerceiverFactory = Callable[[], PerceiveFrame]
"""Makes one `PerceiveFrame` per detector thread: each gets its own interpreter."""


# --- behaviors ---------------------------------------------------------------------------------


class BehaviorEngine(Protocol):
    """What the pipeline needs from `behaviors.engine.CueEngine`: typed results, no event kinds
    to pattern-match. Events (`drain_events`) are for the record, never for decisions."""

    def observe(self, result: FrameResult) -> list[CueEdge]: ...

    def tick(self, now: float, pose: RobotPose) -> TickResult: ...

    def launch(self, name: str, params: dict[str, Any], now: float, source: str = "operator",
               priority: int | None = None) -> None: ...

    def stop(self, now: float, reason: str) -> list[MotionCommand]: ...

    def halt(self, reason: str) -> None: ...

    def pause_cues(self) -> None: ...

    def resume_cues(self) -> None: ...

    def drain_events(self) -> list[EngineEvent]: ...


# --- the robot ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RobotStatus:
    """What the safety layer checks before and while commanding motion."""

    connected: bool
    powered: bool
    estopped: bool
    has_lease: bool
    # body pose in odom: x, y (m), yaw (rad)
    odom_x: float = 0.0
    odom_y: float = 0.0
    odom_yaw: float = 0.0
    detail: str = ""


@runtime_checkable
class Robot(Protocol):
    """What the agent needs from a robot, real or not."""

    async def send(self, command: MotionCommand) -> None:
        """Send one motion command. Raises `RobotUnavailable` if the robot cannot take it."""
        ...

    async def status(self) -> RobotStatus: ...


class RobotUnavailable(RuntimeError):
    """The robot cannot take commands now (lease lost, estopped, disconnected, unpowered)."""


class LeaseLost(RobotUnavailable):
    """Another client (typically the operator's tablet) took the lease: stop, never re-take."""


class ConnectionLost(RobotUnavailable):
    """The robot did not answer: motion stops on the robot's side; the agent reconnects."""


class EStopped(RobotUnavailable):
    """An E-Stop is engaged (or none is configured): no motion until an operator releases it."""


class RobotGone(RobotUnavailable):
    """This run can no longer drive the robot and ends (exit code 4, or 3 when the agent cannot
    log in again): the motors went off and `robot.on_motors_off` does not let the agent power
    them on, or a restarted robot rejects the agent's credentials."""

    def __init__(self, message: str, exit_reason: str = "robot_unavailable") -> None:
        super().__init__(message)
        self.exit_reason = exit_reason  # "robot_unavailable" (exit 4) or "cannot_connect" (3)
