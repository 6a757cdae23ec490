"""Robot state service: power, battery, comms, E-Stop states, kinematic state (transforms
snapshot, body velocity, the 12 leg joints), foot states, system and behavior faults; the
robot's metrics (distance walked, time powered, gait cycles, electric power ... counted by the
physics step), its hardware configuration and the mesh of each link (`sim.robot_model`).

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
from google.protobuf.timestamp_pb2 import Timestamp

from sim import robot_model
from sim.body_state import BodyState, MotorPower, Posture
from sim.poses import VISION_TFORM_ODOM
from sim.robot_clock import RobotClock
from sim.services.common import InvalidRequest, Reply, ServiceSpec
from sim.services.estop import LEVEL_NONE, EstopSystem
from sim.services.frames import SnapshotBuilder
from sim.services.leg_state import fill_legs
from sim.services.robot_metrics import fill_metrics
from sim.world import SimWorld

PowerState = robot_state_pb2.PowerState
EStopState = robot_state_pb2.EStopState
BehaviorState = robot_state_pb2.BehaviorState

BATTERY_PERCENT = 87.0  # when the sim starts; drains with the energy the body uses
BATTERY_CAPACITY_J = 605.0 * 3600  # a Spot battery's 605 Wh
BATTERY_VOLTAGE = 55.0
WIFI_ESSID = "spot-sim"


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

        _fill_power(body, robot, stamp)

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
        RobotClock.to_timestamp(body.stepped_ns, kinematic.acquisition_timestamp)  # when the pose was
        self._snapshots.snapshot(body, kinematic.transforms_snapshot)
        odom_vel = kinematic.velocity_of_body_in_odom
        odom_vel.linear.x, odom_vel.linear.y = body.vx, body.vy
        odom_vel.angular.z = body.wz
        c, s = math.cos(VISION_TFORM_ODOM.angle), math.sin(VISION_TFORM_ODOM.angle)
        vision_vel = kinematic.velocity_of_body_in_vision
        vision_vel.linear.x, vision_vel.linear.y = c * body.vx - s * body.vy, s * body.vx + c * body.vy
        vision_vel.angular.z = body.wz
        fill_legs(body, robot)

        for fault in body.faults:
            item = robot.behavior_fault_state.faults.add(
                behavior_fault_id=fault.fault_id,
                cause=fault.cause,
                status=robot_state_pb2.BehaviorFault.STATUS_CLEARABLE
                if fault.clearable
                else robot_state_pb2.BehaviorFault.STATUS_UNCLEARABLE,
            )
            RobotClock.to_timestamp(fault.onset_ns, item.onset_timestamp)

        robot.behavior_fault_state.SetInParent()
        robot.behavior_state.state = _behavior_state(body)
        for section in self._sections:
            section.fill(robot, body.robot_ns)
        return robot


def _fill_power(body: BodyState, robot: robot_state_pb2.RobotState, stamp: Timestamp) -> None:
    """Power, battery (draining with the energy the body used), Wi-Fi, and no system faults."""
    power = robot.power_state
    power.timestamp.CopyFrom(stamp)
    power.motor_power_state = body.motor_power.value
    power.shore_power_state = PowerState.STATE_OFF_SHORE_POWER
    power.robot_power_state = PowerState.ROBOT_POWER_STATE_ON
    power.payload_ports_power_state = (
        PowerState.PAYLOAD_PORTS_POWER_STATE_ON if body.payload_ports_on else PowerState.PAYLOAD_PORTS_POWER_STATE_OFF
    )
    power.wifi_radio_power_state = (
        PowerState.WIFI_RADIO_POWER_STATE_ON if body.wifi_radio_on else PowerState.WIFI_RADIO_POWER_STATE_OFF
    )
    counters = body.counters
    remaining_j = max(0.0, BATTERY_CAPACITY_J * BATTERY_PERCENT / 100.0 - counters.energy_j)
    charge = 100.0 * remaining_j / BATTERY_CAPACITY_J
    runtime_s = int(remaining_j / counters.power_w)
    power.locomotion_charge_percentage.value = charge
    power.locomotion_estimated_runtime.seconds = runtime_s

    battery = robot.battery_states.add(identifier="sim-battery")
    battery.timestamp.CopyFrom(stamp)
    battery.charge_percentage.value = charge
    battery.estimated_runtime.seconds = runtime_s
    battery.voltage.value = BATTERY_VOLTAGE
    battery.current.value = -counters.power_w / BATTERY_VOLTAGE  # discharging
    battery.temperatures.append(31.0)
    battery.status = robot_state_pb2.BatteryState.STATUS_DISCHARGING

    if body.wifi_radio_on:
        comms = robot.comms_states.add()
        comms.timestamp.CopyFrom(stamp)
        comms.wifi_state.current_mode = robot_state_pb2.WiFiState.MODE_ACCESS_POINT
        comms.wifi_state.essid = WIFI_ESSID
    robot.system_fault_state.SetInParent()  # a healthy robot: no system faults


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

    def __init__(self, clock: RobotClock, builder: RobotStateBuilder, world: SimWorld) -> None:
        self._clock = clock
        self._builder = builder
        self._world = world

    def add_to_server(self, server: grpc.Server) -> None:
        robot_state_service_pb2_grpc.add_RobotStateServiceServicer_to_server(self, server)

    def GetRobotState(
        self, request: robot_state_pb2.RobotStateRequest, context: grpc.ServicerContext
    ) -> robot_state_pb2.RobotStateResponse:
        response = robot_state_pb2.RobotStateResponse()
        with Reply(response, request, self._clock):
            response.robot_state.CopyFrom(self._builder.current())
        return response

    def GetRobotMetrics(
        self, request: robot_state_pb2.RobotMetricsRequest, context: grpc.ServicerContext
    ) -> robot_state_pb2.RobotMetricsResponse:
        response = robot_state_pb2.RobotMetricsResponse()
        with Reply(response, request, self._clock):
            fill_metrics(self._world.snapshot(), response.robot_metrics)
        return response

    def GetRobotHardwareConfiguration(
        self, request: robot_state_pb2.RobotHardwareConfigurationRequest, context: grpc.ServicerContext
    ) -> robot_state_pb2.RobotHardwareConfigurationResponse:
        response = robot_state_pb2.RobotHardwareConfigurationResponse()
        with Reply(response, request, self._clock):
            response.hardware_configuration.CopyFrom(robot_model.hardware_configuration())
        return response

    def GetRobotLinkModel(
        self, request: robot_state_pb2.RobotLinkModelRequest, context: grpc.ServicerContext
    ) -> robot_state_pb2.RobotLinkModelResponse:
        response = robot_state_pb2.RobotLinkModelResponse()
        with Reply(response, request, self._clock):
            model = robot_model.link_model(request.link_name)
            if model is None:
                raise InvalidRequest(f"no link named {request.link_name!r} on this robot")
            response.link_model.CopyFrom(model)
        return response
