"""Robot command service: stand, sit, stop, safe power off, velocity and SE2 trajectory commands,
and stance (the feet step to positions given in odom, vision or the body frame; a foot out of reach
is STATUS_TOO_FAR_AWAY in the feedback, and the robot does not move).

Checks run in the robot's order and answer with the statuses the SDK maps to its own errors:
malformed -> STATUS_INVALID_REQUEST, lease -> LeaseUseResult (LeaseUseError), unknown time sync
-> STATUS_NO_TIMESYNC, motors off (or an E-Stop settling) -> STATUS_NOT_POWERED_ON, uncleared behavior fault ->
STATUS_BEHAVIOR_FAULT, end time already past (robot clock) -> STATUS_EXPIRED, unknown frame ->
STATUS_UNKNOWN_FRAME, arm/gripper/other hardware -> STATUS_UNSUPPORTED.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

import grpc
from bosdyn.api import (
    basic_command_pb2,
    estop_pb2,
    lease_pb2,
    mobility_command_pb2,
    robot_command_pb2,
    robot_command_service_pb2_grpc,
)
from bosdyn.api.spot import robot_command_pb2 as spot_command_pb2
from bosdyn.client.frame_helpers import (
    BODY_FRAME_NAME,
    GRAV_ALIGNED_BODY_FRAME_NAME,
    GROUND_PLANE_FRAME_NAME,
    ODOM_FRAME_NAME,
    VISION_FRAME_NAME,
)
from bosdyn.client.math_helpers import SE2Pose
from bosdyn.client.robot_command import RobotCommandClient

from sim import legs
from sim.body_state import BodyState, MotorPower
from sim.command_records import CommandKind, CommandRecord
from sim.poses import VISION_TFORM_ODOM
from sim.robot_clock import RobotClock
from sim.services.common import Reply, ServiceSpec
from sim.services.lease import BODY_RESOURCE, MOBILITY_RESOURCE, LeaseManager
from sim.services.time_sync import TimeSyncServicer
from sim.world import SimWorld

RCResponse: TypeAlias = robot_command_pb2.RobotCommandResponse
ESTOP_LEVEL_NONE = estop_pb2.ESTOP_LEVEL_NONE
FeedbackStatus = basic_command_pb2.RobotCommandFeedbackStatus

VELOCITY_FRAMES = {
    BODY_FRAME_NAME: "body",
    GRAV_ALIGNED_BODY_FRAME_NAME: "body",  # planar velocity: same as body
    GROUND_PLANE_FRAME_NAME: "body",
    ODOM_FRAME_NAME: "odom",
    VISION_FRAME_NAME: "vision",
}
TRAJECTORY_FRAMES = (ODOM_FRAME_NAME, VISION_FRAME_NAME)
STANCE_FRAMES = (ODOM_FRAME_NAME, VISION_FRAME_NAME, BODY_FRAME_NAME, GRAV_ALIGNED_BODY_FRAME_NAME)


class Rejected(Exception):
    """A command the robot refuses: carries the RobotCommandResponse status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class MobilityOptions:
    body_height_offset: float = 0.0
    max_speed: tuple[float, float, float] | None = None


def mobility_options(request: mobility_command_pb2.MobilityCommand.Request) -> MobilityOptions:
    """Body height and speed limits from Spot's MobilityParams (other params are accepted, ignored)."""
    if not request.HasField("params"):
        return MobilityOptions()
    params = spot_command_pb2.MobilityParams()
    if not request.params.Unpack(params):
        raise Rejected(RCResponse.STATUS_INVALID_REQUEST, "mobility params are not spot.MobilityParams")
    height = 0.0
    offset = params.body_control.base_offset_rt_footprint
    if offset.points:
        height = offset.points[0].pose.position.z
    max_speed = None
    if params.HasField("vel_limit"):
        vel = params.vel_limit.max_vel
        max_speed = (abs(vel.linear.x), abs(vel.linear.y), abs(vel.angular))
    return MobilityOptions(height, max_speed)


class RobotCommandServicer(robot_command_service_pb2_grpc.RobotCommandServiceServicer):
    spec = ServiceSpec(RobotCommandClient.default_service_name, RobotCommandClient.service_type)

    def __init__(
        self,
        clock: RobotClock,
        world: SimWorld,
        leases: LeaseManager,
        time_sync: TimeSyncServicer,
        estop_level: Callable[[], int],
    ) -> None:
        self._clock = clock
        self._world = world
        self._leases = leases
        self._time_sync = time_sync
        self._estop_level = estop_level

    def add_to_server(self, server: grpc.Server) -> None:
        robot_command_service_pb2_grpc.add_RobotCommandServiceServicer_to_server(self, server)

    # ------------------------------------------------------------------ RobotCommand
    def RobotCommand(self, request: robot_command_pb2.RobotCommandRequest, context: grpc.ServicerContext) -> RCResponse:
        response = RCResponse()
        with Reply(response, request, self._clock):
            try:
                response.robot_command_id = self._execute(request, response)
                response.status = RCResponse.STATUS_OK
            except Rejected as rejected:
                response.status = rejected.status
                response.message = str(rejected)
        return response

    def _execute(self, request: robot_command_pb2.RobotCommandRequest, response: RCResponse) -> int:
        command = request.command
        which = command.WhichOneof("command")
        if which is None:
            raise Rejected(RCResponse.STATUS_INVALID_REQUEST, "command is empty")
        if which == "full_body_command":
            kind_name = command.full_body_command.WhichOneof("command")
            mobility = None
        else:
            synchro = command.synchronized_command
            if synchro.HasField("arm_command") or synchro.HasField("gripper_command"):
                raise Rejected(RCResponse.STATUS_UNSUPPORTED, "this robot has no arm or gripper")
            if not synchro.HasField("mobility_command"):
                raise Rejected(RCResponse.STATUS_INVALID_REQUEST, "synchronized_command has no mobility_command")
            mobility = synchro.mobility_command
            kind_name = mobility.WhichOneof("command")
        if kind_name is None:
            raise Rejected(RCResponse.STATUS_INVALID_REQUEST, f"{which} names no command")

        # Mobility commands need the legs (a body lease covers them); full-body ones the body.
        needs = BODY_RESOURCE if which == "full_body_command" else MOBILITY_RESOURCE
        response.lease_use_result.CopyFrom(self._leases.check(request.lease, consumer=self.spec.name, needs=needs))
        if response.lease_use_result.status != lease_pb2.LeaseUseResult.STATUS_OK:
            raise Rejected(RCResponse.STATUS_UNKNOWN, "lease not valid for this command")

        world = self._world
        state = world.snapshot()
        # Stopping and powering off safely are always allowed; everything else needs power.
        if which == "full_body_command":
            if kind_name == "safe_power_off_request":
                return world.command_safe_power_off()
            if kind_name in ("stop_request", "freeze_request"):
                return world.command_stop(full_body=True)
            raise Rejected(RCResponse.STATUS_UNSUPPORTED, f"full-body {kind_name} is not simulated")
        assert mobility is not None
        if kind_name in ("se2_velocity_request", "se2_trajectory_request", "stance_request") and not self._time_sync.is_synced(
            request.clock_identifier
        ):
            raise Rejected(RCResponse.STATUS_NO_TIMESYNC, f"unknown clock_identifier {request.clock_identifier!r}")
        if state.motor_power != MotorPower.ON:
            raise Rejected(RCResponse.STATUS_NOT_POWERED_ON, "motor power is not on")
        if self._estop_level() != ESTOP_LEVEL_NONE:
            # Settling before the cut: the robot takes no new motion.
            raise Rejected(RCResponse.STATUS_NOT_POWERED_ON, "E-Stop engaged: motor power is being cut")
        if state.faults:
            ids = ", ".join(str(f.fault_id) for f in state.faults)
            raise Rejected(RCResponse.STATUS_BEHAVIOR_FAULT, f"uncleared behavior fault(s): {ids}")
        options = mobility_options(mobility)
        if kind_name == "stand_request":
            return world.command_stand(options.body_height_offset)
        if kind_name == "sit_request":
            return world.command_sit()
        if kind_name in ("stop_request", "freeze_request"):
            return world.command_stop(full_body=False)
        if kind_name == "se2_velocity_request":
            return self._velocity(mobility.se2_velocity_request, options, state.robot_ns)
        if kind_name == "se2_trajectory_request":
            return self._trajectory(mobility.se2_trajectory_request, options, state.robot_ns)
        if kind_name == "stance_request":
            return self._stance(mobility.stance_request, state)
        raise Rejected(RCResponse.STATUS_UNSUPPORTED, f"mobility {kind_name} is not simulated")

    def _end_time_ns(self, request: object, now: int, what: str) -> int:
        if not request.HasField("end_time"):  # type: ignore[attr-defined]
            raise Rejected(RCResponse.STATUS_INVALID_REQUEST, f"{what}.end_time is required (robot clock)")
        end_ns = RobotClock.from_timestamp(request.end_time)  # type: ignore[attr-defined]
        if end_ns <= now:
            raise Rejected(
                RCResponse.STATUS_EXPIRED,
                f"{what}.end_time is {(now - end_ns) / 1e9:.3f} s in the past on the robot clock",
            )
        return end_ns

    def _velocity(
        self, request: basic_command_pb2.SE2VelocityCommand.Request, options: MobilityOptions, now: int
    ) -> int:
        frame = VELOCITY_FRAMES.get(request.se2_frame_name)
        if frame is None:
            raise Rejected(RCResponse.STATUS_UNKNOWN_FRAME, f"velocity frame {request.se2_frame_name!r} not supported")
        end_ns = self._end_time_ns(request, now, "se2_velocity_request")
        vel = request.velocity
        return self._world.command_velocity(vel.linear.x, vel.linear.y, vel.angular, frame, end_ns, options.max_speed)

    def _trajectory(
        self, request: basic_command_pb2.SE2TrajectoryCommand.Request, options: MobilityOptions, now: int
    ) -> int:
        if request.se2_frame_name not in TRAJECTORY_FRAMES:
            raise Rejected(
                RCResponse.STATUS_UNKNOWN_FRAME, f"trajectory frame {request.se2_frame_name!r} not supported"
            )
        if not request.trajectory.points:
            raise Rejected(RCResponse.STATUS_INVALID_REQUEST, "se2_trajectory_request.trajectory has no points")
        end_ns = self._end_time_ns(request, now, "se2_trajectory_request")
        # The body walks to the last point; the timing of intermediate points is not simulated.
        goal = SE2Pose.from_proto(request.trajectory.points[-1].pose)
        if request.se2_frame_name == VISION_FRAME_NAME:
            goal = VISION_TFORM_ODOM.inverse() * goal
        return self._world.command_se2_trajectory((goal.x, goal.y, goal.angle), end_ns, options.max_speed)

    def _stance(self, request: basic_command_pb2.StanceCommand.Request, state: BodyState) -> int:
        stance = request.stance
        frame = stance.se2_frame_name
        if frame not in STANCE_FRAMES:
            raise Rejected(RCResponse.STATUS_UNKNOWN_FRAME, f"stance frame {frame!r} not supported")
        missing = [leg for leg in legs.LEGS if leg not in stance.foot_positions]
        if missing:
            raise Rejected(RCResponse.STATUS_INVALID_REQUEST, f"stance.foot_positions lacks {', '.join(missing)}")
        end_ns = self._end_time_ns(request, state.robot_ns, "stance_request")
        # Feet given in a world frame are placed relative to where the body stands now.
        if frame in (ODOM_FRAME_NAME, VISION_FRAME_NAME):
            odom_tform_body = SE2Pose(state.x, state.y, state.yaw)
            frame_tform_body = VISION_TFORM_ODOM * odom_tform_body if frame == VISION_FRAME_NAME else odom_tform_body
            body_tform_frame = frame_tform_body.inverse()
        else:
            body_tform_frame = SE2Pose(0.0, 0.0, 0.0)
        goal = []
        for leg in legs.LEGS:
            point = stance.foot_positions[leg]
            foot = body_tform_frame * SE2Pose(point.x, point.y, 0.0)
            goal.append((foot.x, foot.y))
        accuracy = max(stance.accuracy, 1e-3)
        return self._world.command_stance(tuple(goal), accuracy, end_ns)

    # ------------------------------------------------------------------ feedback
    def RobotCommandFeedback(
        self, request: robot_command_pb2.RobotCommandFeedbackRequest, context: grpc.ServicerContext
    ) -> robot_command_pb2.RobotCommandFeedbackResponse:
        response = robot_command_pb2.RobotCommandFeedbackResponse()
        with Reply(response, request, self._clock) as r:
            record = self._world.command_feedback(request.robot_command_id)
            if record is None:
                r.header.error.code = r.header.error.CODE_INVALID_REQUEST
                r.header.error.message = f"unknown robot_command_id {request.robot_command_id}"
            else:
                fill_feedback(record, response.feedback)
        return response

    # ------------------------------------------------------------------ faults
    def ClearBehaviorFault(
        self, request: robot_command_pb2.ClearBehaviorFaultRequest, context: grpc.ServicerContext
    ) -> robot_command_pb2.ClearBehaviorFaultResponse:
        response = robot_command_pb2.ClearBehaviorFaultResponse()
        with Reply(response, request, self._clock):
            lease_result = self._leases.check(request.lease, consumer=self.spec.name, needs=MOBILITY_RESOURCE)
            response.lease_use_result.CopyFrom(lease_result)
            if response.lease_use_result.status != lease_pb2.LeaseUseResult.STATUS_OK:
                return response
            cleared = self._world.clear_fault(request.behavior_fault_id)
            response.status = (
                robot_command_pb2.ClearBehaviorFaultResponse.STATUS_CLEARED
                if cleared
                else robot_command_pb2.ClearBehaviorFaultResponse.STATUS_NOT_CLEARED
            )
        return response


def fill_feedback(record: CommandRecord, feedback: robot_command_pb2.RobotCommandFeedback) -> None:
    """Shape a command record as Spot's RobotCommandFeedback (full-body or synchronized mobility)."""
    if record.full_body:
        full_body = feedback.full_body_feedback
        full_body.status = record.status
        if record.kind == CommandKind.SAFE_POWER_OFF:
            full_body.safe_power_off_feedback.status = record.detail_status
        else:
            full_body.stop_feedback.SetInParent()
        return
    mobility = feedback.synchronized_feedback.mobility_command_feedback
    mobility.status = record.status
    kind = record.kind
    if kind == CommandKind.STAND:
        mobility.stand_feedback.status = record.detail_status
    elif kind == CommandKind.SIT:
        mobility.sit_feedback.status = record.detail_status
    elif kind == CommandKind.STANCE:
        mobility.stance_feedback.status = record.detail_status
    elif kind == CommandKind.STOP:
        mobility.stop_feedback.SetInParent()
    elif kind == CommandKind.VELOCITY:
        mobility.se2_velocity_feedback.SetInParent()
    elif kind == CommandKind.SE2_TRAJECTORY:
        traj = mobility.se2_trajectory_feedback
        traj.status = record.detail_status
        traj.body_movement_status = record.body_movement_status
