"""What the simulated body is at one instant: motor power, posture, faults, and the snapshot
services read (`BodyState`).

The snapshot is plain frozen data taken under the world's lock, so every service (robot state,
frame tree, cameras) builds its reply from one consistent instant without holding the lock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from bosdyn.api import robot_state_pb2
from bosdyn.client.math_helpers import SE3Pose

from sim.body_counters import BodyCounters
from sim.legs import StanceMove
from sim.poses import VISION_TFORM_ODOM, body_pose


class MotorPower(enum.Enum):
    OFF = robot_state_pb2.PowerState.STATE_OFF
    POWERING_ON = robot_state_pb2.PowerState.STATE_POWERING_ON
    ON = robot_state_pb2.PowerState.STATE_ON
    POWERING_OFF = robot_state_pb2.PowerState.STATE_POWERING_OFF


class Posture(enum.Enum):
    SITTING = "sitting"
    STANDING_UP = "standing_up"
    STANDING = "standing"
    SITTING_DOWN = "sitting_down"


@dataclass(frozen=True)
class FaultRecord:
    fault_id: int
    cause: int
    onset_ns: int
    clearable: bool = True


@dataclass(frozen=True)
class BodyState:
    """A consistent snapshot of the robot body, taken under the world lock."""

    robot_ns: int
    sim_time_s: float
    x: float
    y: float
    yaw: float
    height: float
    vx: float  # odom frame, m/s
    vy: float
    wz: float
    motor_power: MotorPower
    posture: Posture
    faults: tuple[FaultRecord, ...]
    version: int
    stepped_ns: int = 0  # robot time of the physics step this pose and these rates are from
    height_rate: float = 0.0  # m/s while standing up or sitting down
    gait_rate: float = 0.0  # trot cycles per second while walking, else 0
    stance: StanceMove | None = None  # where a stance command put (or is putting) the feet
    payload_ports_on: bool = True
    wifi_radio_on: bool = True
    counters: BodyCounters = field(default_factory=BodyCounters)  # distance, time powered, gait cycles (the trot's phase) ...

    @property
    def odom_tform_body(self) -> SE3Pose:
        return body_pose(self.x, self.y, self.height, self.yaw)

    @property
    def vision_tform_body(self) -> SE3Pose:
        return VISION_TFORM_ODOM.get_closest_se3_transform() * self.odom_tform_body
