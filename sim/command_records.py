"""What the simulated robot was told to do, and the feedback each command reports as it runs.

Records are plain mutable dataclasses owned by the world (changed only under its lock); the
robot-command and power services hand out copies. A bounded history answers feedback requests
for recent commands, as a real robot does, without growing forever.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from typing import TypeVar

from bosdyn.api import basic_command_pb2, power_pb2

FeedbackStatus = basic_command_pb2.RobotCommandFeedbackStatus
TrajStatus = basic_command_pb2.SE2TrajectoryCommand.Feedback
StandStatus = basic_command_pb2.StandCommand.Feedback
SitStatus = basic_command_pb2.SitCommand.Feedback
SafeOffStatus = basic_command_pb2.SafePowerOffCommand.Feedback
StanceStatus = basic_command_pb2.StanceCommand.Feedback

HISTORY = 512  # how many command records are kept for feedback requests


class CommandKind(enum.Enum):
    STAND = "stand"
    SIT = "sit"
    STOP = "stop"
    VELOCITY = "velocity"
    SE2_TRAJECTORY = "se2_trajectory"
    SAFE_POWER_OFF = "safe_power_off"
    STANCE = "stance"


@dataclass
class CommandRecord:
    """One robot command and its feedback as it evolves (statuses are bosdyn.api enum values)."""

    command_id: int
    kind: CommandKind
    issued_ns: int
    end_time_ns: int | None = None
    status: int = FeedbackStatus.STATUS_PROCESSING
    # Command-specific feedback status (stand/sit/safe-power-off/trajectory "Feedback.Status").
    detail_status: int = 0
    body_movement_status: int = 0
    # Velocity: (vx, vy, wz) in `velocity_frame`; trajectory: goal (x, y, yaw) in odom.
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    velocity_frame: str = "body"
    goal_odom: tuple[float, float, float] | None = None
    max_speed: tuple[float, float, float] | None = None  # MobilityParams.vel_limit, if any
    body_height_offset: float = 0.0
    full_body: bool = False  # sent as a full-body command (feedback goes in full_body_feedback)


@dataclass
class PowerCommandRecord:
    power_command_id: int
    request: int
    status: int = power_pb2.STATUS_IN_PROGRESS
    done_ns: int = 0


R = TypeVar("R")


def remember(records: OrderedDict[int, R], record_id: int, record: R) -> None:
    """Keep `record` under `record_id`, dropping the oldest beyond `HISTORY`."""
    records[record_id] = record
    while len(records) > HISTORY:
        records.popitem(last=False)
