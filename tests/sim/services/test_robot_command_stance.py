"""Robot-command stance contract, through the SDK's RobotCommandBuilder.stance_command: the feet
step (one at a time) to positions given in the vision frame around the body, as the SDK's
stance/stance_in_place.py asks, the feedback goes GOING_TO_STANCE -> STANCED, and the robot
state's foot_state shows the feet where they were put; a stance out of reach is TOO_FAR_AWAY
and nothing moves."""

from __future__ import annotations

import time

import pytest
from bosdyn.api import basic_command_pb2, robot_state_pb2
from bosdyn.client import math_helpers
from bosdyn.client.exceptions import InvalidRequestError
from bosdyn.client.frame_helpers import (
    BODY_FRAME_NAME,
    GRAV_ALIGNED_BODY_FRAME_NAME,
    ODOM_FRAME_NAME,
    VISION_FRAME_NAME,
    get_a_tform_b,
    get_se2_a_tform_b,
)
from bosdyn.client.robot import Robot
from bosdyn.client.robot_command import RobotCommandBuilder, RobotCommandClient, UnknownFrameError
from bosdyn.client.robot_state import RobotStateClient
from support.sim_sdk import wait_until

StanceStatus = basic_command_pb2.StanceCommand.Feedback
LEGS = ("fl", "fr", "hl", "hr")


def state(robot: Robot) -> robot_state_pb2.RobotState:
    return robot.ensure_client(RobotStateClient.default_service_name).get_robot_state()


def stance_status(client: RobotCommandClient, command_id: int) -> int:
    feedback = client.robot_command_feedback(command_id).feedback
    return feedback.synchronized_feedback.mobility_command_feedback.stance_feedback.status


def stance_around_body(robot: Robot, x_offset: float, y_offset: float) -> object:
    """The command stance_in_place.py builds: feet at (+-x, +-y) around the body, in vision."""
    vo_t_body = get_se2_a_tform_b(state(robot).kinematic_state.transforms_snapshot, VISION_FRAME_NAME, GRAV_ALIGNED_BODY_FRAME_NAME)
    positions = [
        (vo_t_body * math_helpers.SE2Pose(sx * x_offset, sy * y_offset, 0)).position
        for sx, sy in ((1, 1), (1, -1), (-1, 1), (-1, -1))
    ]
    return RobotCommandBuilder.stance_command(VISION_FRAME_NAME, *positions)


def test_stance_steps_the_feet_one_at_a_time_to_the_asked_positions(commanded) -> None:  # type: ignore[no-untyped-def]
    robot, client = commanded
    start = get_a_tform_b(state(robot).kinematic_state.transforms_snapshot, ODOM_FRAME_NAME, BODY_FRAME_NAME)
    command_id = client.robot_command(stance_around_body(robot, 0.4, 0.3), end_time_secs=time.time() + 10)
    assert stance_status(client, command_id) == StanceStatus.STATUS_GOING_TO_STANCE
    lifted_at_once = 0
    deadline = time.monotonic() + 5
    while stance_status(client, command_id) != StanceStatus.STATUS_STANCED and time.monotonic() < deadline:
        lifted = sum(f.contact == robot_state_pb2.FootState.CONTACT_LOST for f in state(robot).foot_state)
        lifted_at_once = max(lifted_at_once, lifted)
        time.sleep(0.02)
    assert stance_status(client, command_id) == StanceStatus.STATUS_STANCED
    assert lifted_at_once == 1, "a standing Spot lifts one foot at a time to re-stance"
    feet = state(robot).foot_state
    for foot, (sx, sy) in zip(feet, ((1, 1), (1, -1), (-1, 1), (-1, -1))):
        assert foot.foot_position_rt_body.x == pytest.approx(sx * 0.4, abs=0.05)
        assert foot.foot_position_rt_body.y == pytest.approx(sy * 0.3, abs=0.05)
        assert foot.contact == robot_state_pb2.FootState.CONTACT_MADE
    end = get_a_tform_b(state(robot).kinematic_state.transforms_snapshot, ODOM_FRAME_NAME, BODY_FRAME_NAME)
    assert abs(end.x - start.x) < 1e-3 and abs(end.y - start.y) < 1e-3, "a stance does not walk"
    # Re-sending the same stance (as the example does every second) finds the feet in place.
    again = client.robot_command(stance_around_body(robot, 0.4, 0.3), end_time_secs=time.time() + 10)
    assert stance_status(client, again) == StanceStatus.STATUS_STANCED


def test_a_stance_out_of_reach_is_too_far_away_and_nothing_moves(commanded) -> None:  # type: ignore[no-untyped-def]
    robot, client = commanded
    before = [v for f in state(robot).foot_state for v in (f.foot_position_rt_body.x, f.foot_position_rt_body.y)]
    command_id = client.robot_command(stance_around_body(robot, 1.2, 0.3), end_time_secs=time.time() + 10)
    assert stance_status(client, command_id) == StanceStatus.STATUS_TOO_FAR_AWAY
    time.sleep(0.3)
    after = [v for f in state(robot).foot_state for v in (f.foot_position_rt_body.x, f.foot_position_rt_body.y)]
    assert after == pytest.approx(before)


def test_stance_from_sitting_stands_first(commanded) -> None:  # type: ignore[no-untyped-def]
    robot, client = commanded
    client.robot_command(RobotCommandBuilder.synchro_sit_command())
    assert wait_until(lambda: state(robot).foot_state[0].foot_position_rt_body.z > -0.201, timeout=5)
    command_id = client.robot_command(stance_around_body(robot, 0.35, 0.25), end_time_secs=time.time() + 10)
    assert wait_until(lambda: stance_status(client, command_id) == StanceStatus.STATUS_STANCED, timeout=5)
    feet = state(robot).foot_state
    assert all(f.foot_position_rt_body.z == pytest.approx(-0.5, abs=0.02) for f in feet)
    assert feet[0].foot_position_rt_body.x == pytest.approx(0.35, abs=0.05)


def test_walking_after_a_stance_trots_from_the_nominal_stance(commanded) -> None:  # type: ignore[no-untyped-def]
    robot, client = commanded
    command_id = client.robot_command(stance_around_body(robot, 0.4, 0.3), end_time_secs=time.time() + 10)
    assert wait_until(lambda: stance_status(client, command_id) == StanceStatus.STATUS_STANCED, timeout=5)
    client.robot_command(RobotCommandBuilder.synchro_velocity_command(0.0, 0.0, 0.0), end_time_secs=time.time() + 0.3)
    time.sleep(0.5)
    feet = state(robot).foot_state
    assert feet[0].foot_position_rt_body.y == pytest.approx(0.166, abs=0.01)  # back under the hip


def test_stance_needs_an_end_time_and_a_known_frame(commanded) -> None:  # type: ignore[no-untyped-def]
    robot, client = commanded
    with pytest.raises(InvalidRequestError):
        client.robot_command(stance_around_body(robot, 0.4, 0.3))  # no end time
    command = stance_around_body(robot, 0.4, 0.3)
    command.synchronized_command.mobility_command.stance_request.stance.se2_frame_name = "nowhere"  # type: ignore[attr-defined]
    with pytest.raises(UnknownFrameError):
        client.robot_command(command, end_time_secs=time.time() + 10)


def test_re_sending_the_same_stance_mid_step_lets_the_feet_finish_their_steps(commanded) -> None:  # type: ignore[no-untyped-def]
    """stance_in_place.py re-sends its stance every second with a new end time; a foot in the
    air must land where it was going, not where it was when the command came again."""
    robot, client = commanded
    command = stance_around_body(robot, 0.4, 0.3)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:  # re-sent far more often than the example does
        command_id = client.robot_command(command, end_time_secs=time.time() + 10)
        time.sleep(0.05)
    assert wait_until(lambda: stance_status(client, command_id) == StanceStatus.STATUS_STANCED, timeout=3)
    for foot, (sx, sy) in zip(state(robot).foot_state, ((1, 1), (1, -1), (-1, 1), (-1, -1))):
        assert foot.foot_position_rt_body.x == pytest.approx(sx * 0.4, abs=0.005)
        assert foot.foot_position_rt_body.y == pytest.approx(sy * 0.3, abs=0.005)
