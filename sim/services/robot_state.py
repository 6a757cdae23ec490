"""Robot state service: power, battery, E-Stop states, kinematic state (transforms snapshot and
body velocity), behavior faults.

The state is rebuilt at most once per physics step (the world's version) and shared between
requests, so a client polling in a tight loop costs a proto copy, not a rebuild; it never waits
on camera rendering.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Protocol

import grpc
from bosdyn.api import robot_state_pb2, robot_state_service_pb2_grpc
from bosdyn.client.robot_state import RobotStateClient

from sim.body_state import BodyState, MotorPower, Posture
from sim.poses import VISION_TFORM_ODOM
from sim.robot_clock import RobotClock
from sim.services.common import Reply, ServiceSpec
from sim.services.estop import LEVEL_NONE, EstopSystem
from sim.services.frames import SnapshotBuilder
from sim.world import SimWorld

PowerState = robot_state_pb2.PowerState
EStopState = robot_state_pb2.EStopState
BehaviorState = robot_state_pb2.BehaviorState

BATTERY_PERCENT = 87.0
BATTERY_RUNTIME_S = 80 * 60


class StateSection(Protocol):
    """A part of the state another service owns (e.g. service faults): `version` changes when it does."""

    @property
    def version(self) -> int: ...

    def fill(self, state: robot_state_pb2.RobotState, robot_ns: int) -> None: ...


class RobotStateBuilder:
    def __init__(
        self, world: SimWorld, estop: EstopSystem, snapshots: SnapshotBuilder, sections: Sequence[StateSection] = ()
    ) -> None:
        self._world = world
        self._estop = estop
        self._snapshots = snapshots
        self._sections = tuple(sections)
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, ...], robot_state_pb2.RobotState] | None = None

    def current(self) -> robot_state_pb2.RobotState:
        """The state for the world's current version (shared: callers must not modify it)."""
        version = (self._world.version, *(section.version for section in self._sections))
        cached = self._cached
        if cached is not None and cached[0] == version:
            return cached[1]
        state = self.build(self._world.snapshot())
        with self._lock:
            self._cached = (version, state)
        return state

    def build(self, body: BodyState) -> robot_state_pb2.RobotState:
        robot = robot_state_pb2.RobotState()
        stamp = RobotClock.to_timestamp(body.robot_ns)

        power = robot.power_state
        power.timestamp.CopyFrom(stamp)
        power.motor_power_state = body.motor_power.value
        power.shore_power_state = PowerState.STATE_OFF_SHORE_POWER
        power.robot_power_state = PowerState.ROBOT_POWER_STATE_ON
        power.payload_ports_power_state = PowerState.PAYLOAD_PORTS_POWER_STATE_ON
        power.wifi_radio_power_state = PowerState.WIFI_RADIO_POWER_STATE_ON
        power.locomotion_charge_percentage.value = BATTERY_PERCENT
        power.locomotion_estimated_runtime.seconds = BATTERY_RUNTIME_S

        battery = robot.battery_states.add(identifier="sim-battery")
        battery.timestamp.CopyFrom(stamp)
        battery.charge_percentage.value = BATTERY_PERCENT
        battery.estimated_runtime.seconds = BATTERY_RUNTIME_S
        battery.status = robot_state_pb2.BatteryState.STATUS_DISCHARGING

        software_level = self._estop.level(body.robot_ns)
        for name, kind, estopped in (
            ("hardware_estop", EStopState.TYPE_HARDWARE, False),
            ("payload_estop", EStopState.TYPE_HARDWARE, False),
            ("software_estop", EStopState.TYPE_SOFTWARE, software_level != LEVEL_NONE),
        ):
            estop = robot.estop_states.add(name=name, type=kind)
            estop.timestamp.CopyFrom(stamp)
            estop.state = EStopState.STATE_ESTOPPED if estopped else EStopState.STATE_NOT_ESTOPPED

        kinematic = robot.kinematic_state
        kinematic.acquisition_timestamp.CopyFrom(stamp)
        self._snapshots.snapshot(body, kinematic.transforms_snapshot)
        odom_vel = kinematic.velocity_of_body_in_odom
        odom_vel.linear.x, odom_vel.linear.y = body.vx, body.vy
        odom_vel.angular.z = body.wz
        c, s = math.cos(VISION_TFORM_ODOM.angle), math.sin(VISION_TFORM_ODOM.angle)
        vision_vel = kinematic.velocity_of_body_in_vision
        vision_vel.linear.x, vision_vel.linear.y = c * body.vx - s * body.vy, s * body.vx + c * body.vy
        vision_vel.angular.z = body.wz

        for fault in body.faults:
            item = robot.behavior_fault_state.faults.add(
                behavior_fault_id=fault.fault_id,
                cause=fault.cause,
                status=robot_state_pb2.BehaviorFault.STATUS_CLEARABLE
                if fault.clearable
                else robot_state_pb2.BehaviorFault.STATUS_UNCLEARABLE,
            )
            RobotClock.to_timestamp(fault.onset_ns, item.onset_timestamp)

        robot.behavior_state.state = _behavior_state(body)
        for section in self._sections:
            section.fill(robot, body.robot_ns)
        return robot


def _behavior_state(body: BodyState) -> int:
    if body.motor_power != MotorPower.ON:
        return BehaviorState.STATE_NOT_READY
    if body.posture in (Posture.STANDING_UP, Posture.SITTING_DOWN):
        return BehaviorState.STATE_TRANSITION
    if math.hypot(body.vx, body.vy) > 0.01 or abs(body.wz) > 0.01:
        return BehaviorState.STATE_STEPPING
    return BehaviorState.STATE_STANDING if body.posture == Posture.STANDING else BehaviorState.STATE_NOT_READY


class RobotStateServicer(robot_state_service_pb2_grpc.RobotStateServiceServicer):
    spec = ServiceSpec(RobotStateClient.default_service_name, RobotStateClient.service_type)

    def __init__(self, clock: RobotClock, builder: RobotStateBuilder) -> None:
        self._clock = clock
        self._builder = builder

    def add_to_server(self, server: grpc.Server) -> None:
        robot_state_service_pb2_grpc.add_RobotStateServiceServicer_to_server(self, server)

    def GetRobotState(
        self, request: robot_state_pb2.RobotStateRequest, context: grpc.ServicerContext
    ) -> robot_state_pb2.RobotStateResponse:
        response = robot_state_pb2.RobotStateResponse()
        with Reply(response, request, self._clock):
            response.robot_state.CopyFrom(self._builder.current())
        return response
