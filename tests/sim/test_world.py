"""The simulated body's physics and command semantics, stepped by hand on a manual robot clock."""

from __future__ import annotations

import math

import pytest
from bosdyn.api import basic_command_pb2, power_pb2, robot_state_pb2

from sim.scene import Pose2D, Scenario
from sim.world import NSEC_PER_SEC, CommandKind, MotorPower, Posture, RobotClock, SimWorld, SpotLimits

FeedbackStatus = basic_command_pb2.RobotCommandFeedbackStatus
TrajStatus = basic_command_pb2.SE2TrajectoryCommand.Feedback
StandStatus = basic_command_pb2.StandCommand.Feedback
DT = 0.02


class ManualClock(RobotClock):
    """A robot clock that only moves when the test says so."""

    def __init__(self) -> None:
        super().__init__(0.0)
        self.t_ns = 1_700_000_000 * NSEC_PER_SEC

    def now_ns(self) -> int:
        return self.t_ns


def run(world: SimWorld, clock: ManualClock, seconds: float) -> None:
    for _ in range(int(round(seconds / DT))):
        clock.t_ns += int(DT * NSEC_PER_SEC)
        world.step(DT)


def end_in(clock: ManualClock, seconds: float) -> int:
    return clock.t_ns + int(seconds * NSEC_PER_SEC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def standing(clock: ManualClock) -> SimWorld:
    world = SimWorld(Scenario(), clock)
    world.request_power(power_pb2.PowerCommandRequest.REQUEST_ON_MOTORS)
    run(world, clock, 1.0)
    world.command_stand()
    run(world, clock, 1.0)
    assert world.snapshot().posture == Posture.STANDING
    return world


def test_power_on_takes_a_moment_then_succeeds(clock: ManualClock) -> None:
    world = SimWorld(Scenario(), clock)
    record = world.request_power(power_pb2.PowerCommandRequest.REQUEST_ON_MOTORS)
    assert record.status == power_pb2.STATUS_IN_PROGRESS
    assert world.snapshot().motor_power == MotorPower.POWERING_ON
    run(world, clock, 1.0)
    assert world.power_feedback(record.power_command_id).status == power_pb2.STATUS_SUCCESS
    assert world.snapshot().motor_power == MotorPower.ON


def test_stand_rises_to_standing_height(standing: SimWorld) -> None:
    state = standing.snapshot()
    assert state.height == pytest.approx(SpotLimits().stand_height)
    feedback = standing.command_feedback(0)
    assert feedback.kind == CommandKind.STAND and feedback.detail_status == StandStatus.STATUS_IS_STANDING


def test_velocity_moves_until_end_time_then_stops(standing: SimWorld, clock: ManualClock) -> None:
    command_id = standing.command_velocity(1.0, 0.0, 0.0, "body", end_in(clock, 2.0))
    run(standing, clock, 1.9)
    moving = standing.snapshot()
    assert moving.vx == pytest.approx(1.0, abs=1e-6)
    run(standing, clock, 1.6)  # past the end time: decelerates and stays put
    stopped = standing.snapshot()
    assert stopped.vx == 0.0
    assert standing.command_feedback(command_id).status == FeedbackStatus.STATUS_COMMAND_TIMED_OUT
    run(standing, clock, 1.0)
    assert standing.snapshot().x == pytest.approx(stopped.x)
    # 0.5 s ramp up (0.25 m), 1.5 s at 1 m/s, 0.5 s ramp down (0.25 m).
    assert stopped.x == pytest.approx(2.0, abs=0.05)


def test_velocity_respects_spot_limits(standing: SimWorld, clock: ManualClock) -> None:
    limits = SpotLimits()
    standing.command_velocity(5.0, 3.0, 0.0, "body", end_in(clock, 3.0))
    run(standing, clock, 2.0)
    state = standing.snapshot()
    assert (state.vx, state.vy) == pytest.approx((limits.max_vx, limits.max_vy), abs=1e-6)
    standing.command_velocity(0.0, 0.0, -4.0, "body", end_in(clock, 3.0))
    run(standing, clock, 2.0)
    assert standing.snapshot().wz == pytest.approx(-limits.max_wz, abs=1e-6)


def test_acceleration_is_limited(standing: SimWorld, clock: ManualClock) -> None:
    standing.command_velocity(1.6, 0.0, 0.0, "body", end_in(clock, 3.0))
    run(standing, clock, 0.2)
    assert standing.snapshot().vx == pytest.approx(SpotLimits().max_linear_accel * 0.2, abs=1e-6)


def test_se2_trajectory_reaches_goal_and_reports_at_goal(standing: SimWorld, clock: ManualClock) -> None:
    command_id = standing.command_se2_trajectory((2.0, -1.0, math.radians(120)), end_in(clock, 15.0))
    assert standing.command_feedback(command_id).detail_status == TrajStatus.STATUS_GOING_TO_GOAL
    run(standing, clock, 8.0)
    state = standing.snapshot()
    assert math.hypot(state.x - 2.0, state.y + 1.0) < 0.02
    assert abs(math.remainder(state.yaw - math.radians(120), math.tau)) < 0.03
    feedback = standing.command_feedback(command_id)
    assert feedback.status == FeedbackStatus.STATUS_PROCESSING
    assert feedback.detail_status == TrajStatus.STATUS_AT_GOAL
    assert feedback.body_movement_status == TrajStatus.BODY_STATUS_SETTLED


def test_trajectory_times_out_at_end_time(standing: SimWorld, clock: ManualClock) -> None:
    command_id = standing.command_se2_trajectory((20.0, 0.0, 0.0), end_in(clock, 1.0))
    run(standing, clock, 3.0)
    assert standing.command_feedback(command_id).status == FeedbackStatus.STATUS_COMMAND_TIMED_OUT
    state = standing.snapshot()
    assert state.vx == 0.0 and state.x < 2.0


def test_new_command_overrides_the_previous_one(standing: SimWorld, clock: ManualClock) -> None:
    first = standing.command_velocity(0.5, 0.0, 0.0, "body", end_in(clock, 5.0))
    standing.command_stop(full_body=True)
    assert standing.command_feedback(first).status == FeedbackStatus.STATUS_COMMAND_OVERRIDDEN


def test_estop_cut_drops_power_and_faults_a_standing_robot(standing: SimWorld, clock: ManualClock) -> None:
    standing.set_estop_level_source(lambda _now: 1)  # ESTOP_LEVEL_CUT
    run(standing, clock, DT)
    state = standing.snapshot()
    assert state.motor_power == MotorPower.OFF
    assert [f.cause for f in state.faults] == [robot_state_pb2.BehaviorFault.CAUSE_FALL]
    assert standing.clear_fault(state.faults[0].fault_id)
    assert not standing.snapshot().faults


def test_estop_settle_then_cut_sits_first(standing: SimWorld, clock: ManualClock) -> None:
    standing.set_estop_level_source(lambda _now: 2)  # ESTOP_LEVEL_SETTLE_THEN_CUT
    run(standing, clock, 0.1)
    assert standing.snapshot().posture == Posture.SITTING_DOWN
    assert standing.snapshot().motor_power == MotorPower.ON
    run(standing, clock, 1.5)
    state = standing.snapshot()
    assert state.motor_power == MotorPower.OFF and not state.faults


def test_safe_power_off_sits_then_powers_off(standing: SimWorld, clock: ManualClock) -> None:
    command_id = standing.command_safe_power_off()
    run(standing, clock, 0.5)
    assert standing.snapshot().motor_power == MotorPower.ON
    run(standing, clock, 1.5)
    assert standing.snapshot().motor_power == MotorPower.OFF
    feedback = standing.command_feedback(command_id)
    assert feedback.detail_status == basic_command_pb2.SafePowerOffCommand.Feedback.STATUS_POWERED_OFF


def test_comms_loss_powers_off_with_a_lease_timeout_fault(standing: SimWorld, clock: ManualClock) -> None:
    standing.on_comms_loss()
    run(standing, clock, 2.0)
    state = standing.snapshot()
    assert state.motor_power == MotorPower.OFF
    assert [f.cause for f in state.faults] == [robot_state_pb2.BehaviorFault.CAUSE_LEASE_TIMEOUT]


def test_robot_starts_at_the_scenario_start_pose(clock: ManualClock) -> None:
    world = SimWorld(Scenario(robot_start=Pose2D(x=1.0, y=2.0, yaw_deg=90.0)), clock)
    state = world.snapshot()
    assert (state.x, state.y, state.yaw) == pytest.approx((1.0, 2.0, math.pi / 2))
    assert state.height == pytest.approx(SpotLimits().sit_height)
