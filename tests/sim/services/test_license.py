"""License service through the SDK's LicenseClient and `python -m bosdyn.client HOST license`."""

from __future__ import annotations

import time
from pathlib import Path

from bosdyn.api import license_pb2
from bosdyn.client.license import LicenseClient
from bosdyn.client.robot import Robot
from support.sdk_cli import run_sdk_cli

from sim.robot_clock import RobotClock
from sim.server import SimServer


def test_license_is_valid_now_on_the_robot_clock_for_this_robot(spot_robot: Robot) -> None:
    info = spot_robot.ensure_client(LicenseClient.default_service_name).get_license_info()
    assert info.status == license_pb2.LicenseInfo.STATUS_VALID
    assert info.id
    assert info.robot_serial == spot_robot.get_id().serial_number
    robot_now_ns = RobotClock.from_timestamp(spot_robot.time_sync.robot_timestamp_from_local_secs(time.time()))
    assert RobotClock.from_timestamp(info.not_valid_before) < robot_now_ns < RobotClock.from_timestamp(info.not_valid_after)
    assert "world-objects" in info.licensed_features


def test_feature_enabled_only_for_what_the_sim_simulates(spot_robot: Robot) -> None:
    client = spot_robot.ensure_client(LicenseClient.default_service_name)
    # The SDK's docking example gates on "docking", choreography programs on "choreography".
    enabled = client.get_feature_enabled(["world-objects", "local-grid-service", "docking", "choreography"])
    assert enabled == {"world-objects": True, "local-grid-service": True, "docking": False, "choreography": False}


def test_sdk_command_line_shows_the_license(sim: SimServer, tmp_path: Path) -> None:
    out = run_sdk_cli(sim, tmp_path, "license", "-f", "docking", "image").stdout
    assert "STATUS_VALID" in out
    assert 'robot_serial: "spot-sim-0001"' in out
    assert "Feature image is enabled." in out
    assert "Feature docking is not enabled." in out
