"""Robot commands through RobotCommandClient: power needed, velocity and trajectory commands with end times on the robot clock, safe power off, feedback errors."""

from __future__ import annotations

import math
import time

import pytest
from bosdyn.api import basic_command_pb2
from bosdyn.client import math_helpers
from bosdyn.client.exceptions import InvalidRequestError
from bosdyn.client.frame_helpers import BODY_FRAME_NAME, ODOM_FRAME_NAME, VISION_FRAME_NAME, get_a_tform_b
from bosdyn.client.lease import LeaseClient, LeaseKeepAlive
from bosdyn.client.robot import Robot
from bosdyn.client.robot_command import (
    ExpiredError,
    NotPoweredOnError,
    RobotCommandBuilder,
    RobotCommandClient,
    block_for_trajectory_cmd,
)
from bosdyn.client.robot_state import RobotStateClient
from support.sim_sdk import wait_until

from sim.server import SimServer
from sim.world import VISION_TFORM_ODOM, MotorPower

TrajStatus = basic_command_pb2.SE2TrajectoryCommand.Feedback


def odom_pose(robot: Robot) -> math_helpers.SE2Pose:
    state = robot.ensure_client(RobotStateClient.default_service_name).get_robot_state()
    return get_a_tform_b(state.kinematic_state.transforms_snapshot, ODOM_FRAME_NAME, BODY_FRAME_NAME).get_closest_se2_transform()


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


def test_feedback_for_unknown_command_is_an_invalid_request(spot_robot: Robot) -> None:
    command_client = spot_robot.ensure_client(RobotCommandClient.default_service_name)
    with pytest.raises(InvalidRequestError):
        command_client.robot_command_feedback(987654)
