"""The simulated Spot through the real bosdyn-client over TLS: auth, time sync, E-Stop, lease,
power, commands and their errors, as a program written for a real robot sees them."""

from __future__ import annotations

import math
import time

import pytest
from bosdyn.api import basic_command_pb2, estop_pb2, robot_state_pb2
from bosdyn.client import math_helpers
from bosdyn.client.auth import InvalidLoginError
from bosdyn.client.estop import EstopClient, EstopEndpoint, EstopKeepAlive, IncorrectChallengeResponseError
from bosdyn.client.exceptions import (
    InvalidRequestError,
    LeaseUseError,
    UnauthenticatedError,
    UnimplementedError,
)
from bosdyn.client.frame_helpers import BODY_FRAME_NAME, ODOM_FRAME_NAME, VISION_FRAME_NAME, get_a_tform_b
from bosdyn.client.graph_nav import GraphNavClient
from bosdyn.client.lease import LeaseClient, LeaseKeepAlive, ResourceAlreadyClaimedError
from bosdyn.client.payload_registration import InvalidPayloadCredentialsError
from bosdyn.client.power import EstoppedError, power_on_motors
from bosdyn.client.robot import Robot
from bosdyn.client.robot_command import (
    ExpiredError,
    NotPoweredOnError,
    RobotCommandBuilder,
    RobotCommandClient,
    block_for_trajectory_cmd,
    blocking_stand,
)
from bosdyn.client.robot_state import RobotStateClient
from support.sim_sdk import wait_until

from sim.server import DEFAULT_CLOCK_OFFSET_S, DEFAULT_PAYLOAD_GUID, DEFAULT_PAYLOAD_SECRET, SimServer
from sim.testing import close_sdk, connect_sdk
from sim.world import VISION_TFORM_ODOM, MotorPower

TrajStatus = basic_command_pb2.SE2TrajectoryCommand.Feedback


def odom_pose(robot: Robot) -> math_helpers.SE2Pose:
    state = robot.ensure_client(RobotStateClient.default_service_name).get_robot_state()
    return get_a_tform_b(state.kinematic_state.transforms_snapshot, ODOM_FRAME_NAME, BODY_FRAME_NAME).get_closest_se2_transform()


# ---------------------------------------------------------------- connecting


def test_directory_lists_services_with_sdk_types_and_authorities(spot_robot: Robot) -> None:
    entries = {entry.name: entry for entry in spot_robot.list_services()}
    assert entries["estop"].type == "bosdyn.api.EstopService"
    assert entries["image"].type == "bosdyn.api.ImageService"
    assert entries["robot-command"].authority == "api.spot.robot"
    assert entries["auth"].authority == "auth.spot.robot"
    assert entries["robot-id"].authority == "id.spot.robot"
    assert entries["payload-registration"].authority == "payload-registration.spot.robot"
    assert spot_robot.get_id().species == "spot"


def test_wrong_password_is_an_invalid_login(sim: SimServer) -> None:
    robot = connect_sdk(sim, "bad-login", authenticate=False)
    try:
        with pytest.raises(InvalidLoginError):
            robot.authenticate("spot", "not-the-password")
    finally:
        close_sdk(robot)


def test_services_require_a_user_token(sim: SimServer) -> None:
    robot = connect_sdk(sim, "no-login", authenticate=False)
    try:
        assert robot.get_id().serial_number  # robot-id is open, like on a robot
        with pytest.raises(UnauthenticatedError):
            robot.list_services()
    finally:
        close_sdk(robot)


def test_payload_credentials_authenticate(sim: SimServer) -> None:
    robot = connect_sdk(sim, "payload", authenticate=False)
    try:
        with pytest.raises(InvalidPayloadCredentialsError):
            robot.authenticate_from_payload_credentials(DEFAULT_PAYLOAD_GUID, "wrong-secret", retry_interval=0.01)
        robot.authenticate_from_payload_credentials(DEFAULT_PAYLOAD_GUID, DEFAULT_PAYLOAD_SECRET, retry_interval=0.01)
        state = robot.ensure_client(RobotStateClient.default_service_name).get_robot_state()
        assert state.power_state.motor_power_state == robot_state_pb2.PowerState.STATE_OFF
    finally:
        close_sdk(robot)


def test_time_sync_measures_the_robot_clock_offset(spot_robot: Robot) -> None:
    endpoint = spot_robot.time_sync.endpoint
    skew = endpoint.clock_skew.seconds + endpoint.clock_skew.nanos * 1e-9
    assert skew == pytest.approx(DEFAULT_CLOCK_OFFSET_S, abs=0.02)
    rtt = endpoint.round_trip_time.seconds + endpoint.round_trip_time.nanos * 1e-9
    assert 0.0 <= rtt < 0.1
    assert endpoint.clock_identifier


# ---------------------------------------------------------------- E-Stop


def test_estop_keepalive_allows_power_and_its_timeout_cuts_power(spot_robot: Robot) -> None:
    estop_client = spot_robot.ensure_client(EstopClient.default_service_name)
    endpoint = EstopEndpoint(estop_client, "test-estop", estop_timeout=0.9)
    endpoint.force_simple_setup()
    assert spot_robot.is_estopped()  # registered but not released yet
    keepalive = EstopKeepAlive(endpoint)
    try:
        assert wait_until(lambda: not spot_robot.is_estopped(), 2.0)
        with pytest.raises(IncorrectChallengeResponseError):
            estop_client.check_in(estop_pb2.ESTOP_LEVEL_NONE, endpoint, challenge=12345, response=0)
        lease_client = spot_robot.ensure_client(LeaseClient.default_service_name)
        with LeaseKeepAlive(lease_client, must_acquire=True, return_at_exit=True):
            power_on_motors(spot_robot.ensure_client("power"), timeout_sec=5, update_frequency=20)
            assert spot_robot.is_powered_on()
            keepalive.shutdown()  # check-ins stop: timeout -> settle (sit) then cut
            assert wait_until(lambda: not spot_robot.is_powered_on(), 4.0)
            status = estop_client.get_status()
            assert status.stop_level != estop_pb2.ESTOP_LEVEL_NONE
            state = spot_robot.ensure_client(RobotStateClient.default_service_name).get_robot_state()
            software = next(s for s in state.estop_states if s.name == "software_estop")
            assert software.state == robot_state_pb2.EStopState.STATE_ESTOPPED
            with pytest.raises(EstoppedError):
                power_on_motors(spot_robot.ensure_client("power"), timeout_sec=2)
    finally:
        keepalive.shutdown()


def test_settle_then_cut_refuses_motion_sits_and_cuts_without_a_fault(spot_robot: Robot) -> None:
    estop_client = spot_robot.ensure_client(EstopClient.default_service_name)
    endpoint = EstopEndpoint(estop_client, "test-estop", estop_timeout=5.0)
    endpoint.force_simple_setup()
    keepalive = EstopKeepAlive(endpoint)
    try:
        lease_client = spot_robot.ensure_client(LeaseClient.default_service_name)
        with LeaseKeepAlive(lease_client, must_acquire=True, return_at_exit=True):
            power_on_motors(spot_robot.ensure_client("power"), timeout_sec=5, update_frequency=20)
            command_client = spot_robot.ensure_client(RobotCommandClient.default_service_name)
            blocking_stand(command_client, timeout_sec=5, update_frequency=20)
            keepalive.settle_then_cut()
            with pytest.raises(NotPoweredOnError):
                command_client.robot_command(RobotCommandBuilder.synchro_stand_command())
            assert wait_until(lambda: not spot_robot.is_powered_on(), 3.0)
            state = spot_robot.ensure_client(RobotStateClient.default_service_name).get_robot_state()
            assert not state.behavior_fault_state.faults  # it sat down before the cut: no fall
    finally:
        keepalive.shutdown()


# ---------------------------------------------------------------- lease


def test_lease_taken_by_another_client_fails_the_first_clients_commands(sim: SimServer, commanded) -> None:  # type: ignore[no-untyped-def]
    robot, command_client = commanded
    other = connect_sdk(sim, "lease-taker")
    try:
        other_lease = other.ensure_client(LeaseClient.default_service_name)
        with pytest.raises(ResourceAlreadyClaimedError):
            other_lease.acquire()
        other_lease.take()
        (body,) = [r for r in other_lease.list_leases() if r.resource == "body"]
        assert body.lease_owner.client_name.startswith("lease-taker")
        with pytest.raises(LeaseUseError) as caught:
            command_client.robot_command(RobotCommandBuilder.stop_command())
        assert caught.value.lease_use_result.status == caught.value.lease_use_result.STATUS_OLDER
        # The taker commands the robot now.
        other.ensure_client(RobotCommandClient.default_service_name).robot_command(RobotCommandBuilder.stop_command())
    finally:
        close_sdk(other)


def test_silent_lease_holder_goes_stale_robot_powers_off_and_others_may_acquire() -> None:
    with SimServer.start(port=0, lease_timeout_s=1.5) as server:
        first = connect_sdk(server, "silent-holder")
        second = connect_sdk(server, "next-operator")
        try:
            lease_client = first.ensure_client(LeaseClient.default_service_name)
            lease = lease_client.acquire()
            power_on_motors(first.ensure_client("power"), timeout_sec=5, update_frequency=20)
            # No keep-alive: after the timeout the robot sits and powers off (comms loss).
            assert wait_until(lambda: not first.is_powered_on(), 4.0)
            (body,) = [r for r in lease_client.list_leases() if r.resource == "body"]
            assert body.is_stale
            command_client = first.ensure_client(RobotCommandClient.default_service_name)
            with pytest.raises(LeaseUseError) as caught:
                command_client.robot_command(RobotCommandBuilder.stop_command())
            assert caught.value.lease_use_result.status == caught.value.lease_use_result.STATUS_REVOKED
            state = first.ensure_client(RobotStateClient.default_service_name).get_robot_state()
            causes = [f.cause for f in state.behavior_fault_state.faults]
            assert causes == [robot_state_pb2.BehaviorFault.CAUSE_LEASE_TIMEOUT]
            # A stale lease may be acquired by someone else (no TakeLease needed).
            second.ensure_client(LeaseClient.default_service_name).acquire()
            with pytest.raises(LeaseUseError):
                lease_client.retain_lease(lease)
        finally:
            close_sdk(first)
            close_sdk(second)


# ---------------------------------------------------------------- commands


def test_commands_without_power_are_rejected(spot_robot: Robot) -> None:
    lease_client = spot_robot.ensure_client(LeaseClient.default_service_name)
    with LeaseKeepAlive(lease_client, must_acquire=True, return_at_exit=True):
        command_client = spot_robot.ensure_client(RobotCommandClient.default_service_name)
        with pytest.raises(NotPoweredOnError):
            command_client.robot_command(RobotCommandBuilder.synchro_stand_command())


def test_velocity_moves_the_body_and_stops_at_end_time(commanded) -> None:  # type: ignore[no-untyped-def]
    robot, command_client = commanded
    start = odom_pose(robot)
    command_client.robot_command(RobotCommandBuilder.synchro_velocity_command(0.8, 0.0, 0.0), end_time_secs=time.time() + 1.0)
    assert wait_until(lambda: odom_pose(robot).x > start.x + 0.1, 1.0)
    time.sleep(1.2)  # end time plus the time to brake
    stopped = odom_pose(robot)
    time.sleep(0.3)
    assert odom_pose(robot).x == pytest.approx(stopped.x, abs=1e-3)
    # About 0.8 m/s for 1 s (ramps included), straight ahead.
    assert stopped.x - start.x == pytest.approx(0.8, abs=0.15)
    assert abs(stopped.y - start.y) < 1e-3


def test_end_time_is_on_the_robot_clock(commanded) -> None:  # type: ignore[no-untyped-def]
    robot, command_client = commanded
    command = RobotCommandBuilder.synchro_velocity_command(0.5, 0.0, 0.0)
    # A client that forgets time sync: an end time 0.6 s ahead on *its* clock is already past
    # on the robot's, which runs ahead.
    end = command.synchronized_command.mobility_command.se2_velocity_request.end_time
    end.FromNanoseconds(time.time_ns() + 600_000_000)
    with pytest.raises(ExpiredError):
        command_client.robot_command(command)


def test_se2_trajectory_in_vision_reaches_its_goal(commanded) -> None:  # type: ignore[no-untyped-def]
    robot, command_client = commanded
    goal_vision = math_helpers.SE2Pose(2.0, 1.0, 0.8)
    command = RobotCommandBuilder.synchro_se2_trajectory_point_command(
        goal_vision.x, goal_vision.y, goal_vision.angle, VISION_FRAME_NAME
    )
    command_id = command_client.robot_command(command, end_time_secs=time.time() + 10.0)
    feedback = command_client.robot_command_feedback(command_id)
    assert (
        feedback.feedback.synchronized_feedback.mobility_command_feedback.se2_trajectory_feedback.status
        == TrajStatus.STATUS_GOING_TO_GOAL
    )
    assert block_for_trajectory_cmd(
        command_client, command_id, trajectory_end_statuses=(TrajStatus.STATUS_AT_GOAL,), timeout_sec=8.0
    )
    state = robot.ensure_client(RobotStateClient.default_service_name).get_robot_state()
    vision_tform_body = get_a_tform_b(state.kinematic_state.transforms_snapshot, VISION_FRAME_NAME, BODY_FRAME_NAME)
    reached = vision_tform_body.get_closest_se2_transform()
    assert math.hypot(reached.x - goal_vision.x, reached.y - goal_vision.y) < 0.03
    assert abs(math_helpers.angle_diff(reached.angle, goal_vision.angle)) < 0.05
    # Consistent frames: odom pose = inverse(vision_tform_odom) * vision pose.
    expected_odom = VISION_TFORM_ODOM.inverse() * goal_vision
    odom = odom_pose(robot)
    assert math.hypot(odom.x - expected_odom.x, odom.y - expected_odom.y) < 0.03


def test_safe_power_off_sits_and_cuts_power(sim: SimServer, commanded) -> None:  # type: ignore[no-untyped-def]
    robot, _ = commanded
    robot.power_off(cut_immediately=False, timeout_sec=5, update_frequency=20)
    assert not robot.is_powered_on()
    assert sim.world.snapshot().motor_power == MotorPower.OFF


def test_operator_comments_are_stored(sim: SimServer, spot_robot: Robot) -> None:
    spot_robot.operator_comment("sim test comment")
    assert [c.message for c in sim.operator_comments] == ["sim test comment"]


def test_services_not_simulated_answer_unimplemented(spot_robot: Robot) -> None:
    # GraphNav is not simulated (not in the directory): reached under the robot's API authority,
    # its RPCs answer gRPC UNIMPLEMENTED, which the SDK raises as UnimplementedError.
    channel = spot_robot.ensure_secure_channel("api.spot.robot")
    client = spot_robot.ensure_client(GraphNavClient.default_service_name, channel=channel)
    with pytest.raises(UnimplementedError):
        client.get_localization_state()


def test_feedback_for_unknown_command_is_an_invalid_request(spot_robot: Robot) -> None:
    command_client = spot_robot.ensure_client(RobotCommandClient.default_service_name)
    with pytest.raises(InvalidRequestError):
        command_client.robot_command_feedback(987654)
