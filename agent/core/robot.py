"""The `Robot` seam: what the agent needs from a robot, real or not.

`SpotRobot` (agent/spot/robot.py) drives a Spot (or the sim) through `bosdyn-client`;
`DryRunRobot` (agent/replay/dry_run.py) records the commands it would have sent, for replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from behaviors.commands import MotionCommand


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
