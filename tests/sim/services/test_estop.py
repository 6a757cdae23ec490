"""E-Stop: an endpoint's keep-alive allows power, its timeout cuts it; settle-then-cut sits first."""

from __future__ import annotations

import pytest
from bosdyn.api import estop_pb2, robot_state_pb2
from bosdyn.client.estop import EstopClient, EstopEndpoint, EstopKeepAlive, IncorrectChallengeResponseError
from bosdyn.client.lease import LeaseClient, LeaseKeepAlive
from bosdyn.client.power import EstoppedError, power_on_motors
from bosdyn.client.robot import Robot
from bosdyn.client.robot_command import (
    NotPoweredOnError,
    RobotCommandBuilder,
    RobotCommandClient,
    blocking_stand,
)
from bosdyn.client.robot_state import RobotStateClient
from support.sim_sdk import wait_until


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
