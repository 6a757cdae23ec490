"""Power service contract, through the SDK's PowerClient: fan power commands and their feedback
(the SDK's fan_command/basic_fan_command.py makes these calls), fan information
(`python -m bosdyn.client HOST power fan`), the safety-stop reset
(reset_safety_stop/reset_primary_safety_stop.py and reset_redundant_safety_stop.py), payload
ports and Wi-Fi."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bosdyn.api import power_pb2, robot_state_pb2
from bosdyn.client.exceptions import InvalidRequestError, LeaseUseError
from bosdyn.client.lease import LeaseClient, LeaseKeepAlive
from bosdyn.client.power import (
    PowerClient,
    SafetyStopIncompatibleHardwareError,
    SafetyStopUnknownStopTypeError,
    power_off_payload_ports,
    power_off_wifi_radio,
    power_on_payload_ports,
    power_on_wifi_radio,
)
from bosdyn.client.robot import Robot
from bosdyn.client.robot_state import RobotStateClient
from support.sim_sdk import run_bosdyn_cli, wait_until

from sim.server import SimServer
from sim.services.fans import MAX_FAN_HZ
from sim.testing import sdk_robot

FeedbackStatus = power_pb2.FanPowerCommandFeedbackResponse
# Fan information came to the SDK's PowerClient (and `python -m bosdyn.client HOST power fan`)
# after 5.0; the oldest SDK this project admits can only test the rest.
needs_fan_info = pytest.mark.skipif(not hasattr(PowerClient, "get_fan_info"),
                                    reason="this bosdyn-client has no PowerClient.get_fan_info")
SafetyStop = power_pb2.ResetSafetyStopRequest


@pytest.fixture
def power(spot_robot: Robot) -> Iterator[PowerClient]:
    """A PowerClient whose wallet holds the body lease (kept alive)."""
    with LeaseKeepAlive(spot_robot.ensure_client(LeaseClient.default_service_name), must_acquire=True, return_at_exit=True):
        yield spot_robot.ensure_client(PowerClient.default_service_name)


def fan_hz(client: PowerClient) -> dict[str, float]:
    return {name: info.frequency for name, info in client.get_fan_info().fan_information.items()}


@needs_fan_info
def test_fan_command_runs_for_its_duration_then_completes(power: PowerClient) -> None:
    automatic = fan_hz(power)
    assert sorted(automatic) == ["body_fan_0", "body_fan_1", "hips_fan_0", "hips_fan_1"]
    response = power.fan_power_command(percent_power=100, duration=1)
    assert response.status == power_pb2.FanPowerCommandResponse.STATUS_OK and response.command_id > 0
    running = power.fan_power_command_feedback(response.command_id)
    assert running.status == FeedbackStatus.STATUS_RUNNING
    assert running.desired_end_time == response.desired_end_time
    assert all(hz == pytest.approx(MAX_FAN_HZ) for hz in fan_hz(power).values())
    time.sleep(1.2)
    assert power.fan_power_command_feedback(response.command_id).status == FeedbackStatus.STATUS_COMPLETE
    assert fan_hz(power) == automatic  # back to automatic


@needs_fan_info
def test_a_newer_fan_command_overrides_the_running_one(power: PowerClient) -> None:
    first = power.fan_power_command(percent_power=20, duration=30)
    second = power.fan_power_command(percent_power=60, duration=30)
    feedback = power.fan_power_command_feedback(first.command_id)
    assert feedback.status == FeedbackStatus.STATUS_OVERRIDDEN_BY_COMMAND
    assert feedback.HasField("early_stop_time")
    assert feedback.early_stop_time.ToNanoseconds() < first.desired_end_time.ToNanoseconds()
    assert power.fan_power_command_feedback(second.command_id).status == FeedbackStatus.STATUS_RUNNING
    assert all(hz == pytest.approx(0.6 * MAX_FAN_HZ) for hz in fan_hz(power).values())


def test_bad_fan_commands_are_invalid_requests(power: PowerClient) -> None:
    with pytest.raises(InvalidRequestError):
        power.fan_power_command(percent_power=150, duration=5)
    with pytest.raises(InvalidRequestError):
        power.fan_power_command(percent_power=50, duration=0)
    with pytest.raises(InvalidRequestError):
        power.fan_power_command_feedback(424242)


def test_fan_command_needs_the_current_lease(sim: SimServer, power: PowerClient) -> None:
    with sdk_robot(sim, "other") as other:
        other.ensure_client(LeaseClient.default_service_name).take()  # someone else takes the robot
        with pytest.raises(LeaseUseError):
            power.fan_power_command(percent_power=50, duration=5)


def test_primary_safety_stop_resets_and_this_robot_has_no_redundant_one(power: PowerClient) -> None:
    response = power.reset_safety_stop(safety_stop_type=SafetyStop.SAFETY_STOP_PRIMARY)
    assert response.status == power_pb2.ResetSafetyStopResponse.STATUS_OK
    with pytest.raises(SafetyStopIncompatibleHardwareError):
        power.reset_safety_stop(safety_stop_type=SafetyStop.SAFETY_STOP_REDUNDANT)
    with pytest.raises(SafetyStopUnknownStopTypeError):
        power.reset_safety_stop(safety_stop_type=SafetyStop.SAFETY_STOP_UNKNOWN)


def test_payload_ports_and_wifi_power_show_in_the_robot_state(spot_robot: Robot, power: PowerClient) -> None:
    def power_state() -> robot_state_pb2.PowerState:
        return spot_robot.ensure_client(RobotStateClient.default_service_name).get_robot_state().power_state

    PowerState = robot_state_pb2.PowerState
    power_off_payload_ports(power, timeout_sec=5, update_frequency=20)
    assert wait_until(lambda: power_state().payload_ports_power_state == PowerState.PAYLOAD_PORTS_POWER_STATE_OFF, 2)
    power_on_payload_ports(power, timeout_sec=5, update_frequency=20)
    assert wait_until(lambda: power_state().payload_ports_power_state == PowerState.PAYLOAD_PORTS_POWER_STATE_ON, 2)
    power_off_wifi_radio(power, timeout_sec=5, update_frequency=20)
    assert wait_until(lambda: power_state().wifi_radio_power_state == PowerState.WIFI_RADIO_POWER_STATE_OFF, 2)
    power_on_wifi_radio(power, timeout_sec=5, update_frequency=20)
    assert wait_until(lambda: power_state().wifi_radio_power_state == PowerState.WIFI_RADIO_POWER_STATE_ON, 2)


@needs_fan_info
def test_bosdyn_cli_fan_information(sim: SimServer, tmp_path: Path) -> None:
    fans = run_bosdyn_cli(sim, tmp_path, "power", "fan")
    assert fans.returncode == 0 and not fans.stderr, fans.stderr
    assert sum(line.startswith(("body_fan_", "hips_fan_")) for line in fans.stdout.splitlines()) == 4


def test_bosdyn_cli_power_commands(sim: SimServer, tmp_path: Path) -> None:
    for args in (("payload", "off"), ("payload", "on"), ("wifi", "on")):
        result = run_bosdyn_cli(sim, tmp_path, "power", *args)
        # These subcommands return None from their _run, so the tool exits 1 even on success (as
        # against a robot); a failed call prints the SDK error's name instead of the lease lines.
        assert "Error" not in result.stderr and "Lease check-in stopped" in result.stderr, (args, result.stderr)
