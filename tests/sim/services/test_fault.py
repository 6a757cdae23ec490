"""Service faults through the SDK's FaultClient (what the stock `service_faults` example's
direct part calls), seen in robot state and by `python -m bosdyn.client HOST fault show`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from bosdyn.api import service_fault_pb2
from bosdyn.client.exceptions import InvalidRequestError
from bosdyn.client.fault import FaultClient, ServiceFaultAlreadyExistsError, ServiceFaultDoesNotExistError
from bosdyn.client.robot import Robot
from bosdyn.client.robot_state import RobotStateClient
from support.sdk_cli import run_sdk_cli

from sim.robot_clock import RobotClock
from sim.server import DEFAULT_PAYLOAD_GUID, DEFAULT_PAYLOAD_SECRET, SimServer
from sim.testing import close_sdk, connect_sdk


def _fault(name: str, service: str = "my-service") -> service_fault_pb2.ServiceFault:
    fault = service_fault_pb2.ServiceFault(error_message=f"{name} went wrong", severity=service_fault_pb2.ServiceFault.SEVERITY_WARN)
    fault.fault_id.fault_name = name
    fault.fault_id.service_name = service
    return fault


def _active(robot: Robot) -> list[service_fault_pb2.ServiceFault]:
    return list(robot.ensure_client(RobotStateClient.default_service_name).get_robot_state().service_fault_state.faults)


def test_triggered_fault_appears_in_robot_state_until_cleared(spot_robot: Robot) -> None:
    faults = spot_robot.ensure_client(FaultClient.default_service_name)
    before_ns = RobotClock.from_timestamp(spot_robot.time_sync.robot_timestamp_from_local_secs(time.time()))
    faults.trigger_service_fault(_fault("CameraUnplugged"))
    (active,) = _active(spot_robot)
    assert (active.fault_id.fault_name, active.fault_id.service_name) == ("CameraUnplugged", "my-service")
    assert active.error_message == "CameraUnplugged went wrong"
    assert active.severity == service_fault_pb2.ServiceFault.SEVERITY_WARN
    onset_ns = RobotClock.from_timestamp(active.onset_timestamp)
    assert abs(onset_ns - before_ns) < 2_000_000_000  # stamped on the robot clock, not the host's
    time.sleep(0.1)
    assert _active(spot_robot)[0].duration.ToNanoseconds() >= 100_000_000

    with pytest.raises(ServiceFaultAlreadyExistsError):
        faults.trigger_service_fault(_fault("CameraUnplugged"))
    assert len(_active(spot_robot)) == 1  # the oldest is kept

    faults.clear_service_fault(active.fault_id)
    assert _active(spot_robot) == []
    with pytest.raises(ServiceFaultDoesNotExistError):
        faults.clear_service_fault(active.fault_id)


def test_clear_all_faults_of_a_service(spot_robot: Robot) -> None:
    faults = spot_robot.ensure_client(FaultClient.default_service_name)
    for name, service in (("A", "svc-1"), ("B", "svc-1"), ("C", "svc-2")):
        faults.trigger_service_fault(_fault(name, service))
    faults.clear_service_fault(_fault("A", "svc-1").fault_id, clear_all_service_faults=True)
    assert [f.fault_id.fault_name for f in _active(spot_robot)] == ["C"]


def test_fault_without_a_name_is_an_invalid_request(spot_robot: Robot) -> None:
    with pytest.raises(InvalidRequestError):
        spot_robot.ensure_client(FaultClient.default_service_name).trigger_service_fault(_fault(""))


def test_a_payload_fault_carries_its_guid(sim: SimServer) -> None:
    robot = connect_sdk(sim, "payload-faults", authenticate=False)
    try:
        robot.authenticate_from_payload_credentials(DEFAULT_PAYLOAD_GUID, DEFAULT_PAYLOAD_SECRET)
        faults = robot.ensure_client(FaultClient.default_service_name)
        faults.trigger_service_fault(_fault("LidarDirty", "lidar"))
        (active,) = _active(robot)
        assert active.fault_id.payload_guid == DEFAULT_PAYLOAD_GUID
        faults.clear_service_fault(_fault("LidarDirty", "lidar").fault_id)  # the payload's own: GUID implied
        assert _active(robot) == []
    finally:
        close_sdk(robot)


def test_sdk_command_line_shows_service_faults(sim: SimServer, spot_robot: Robot, tmp_path: Path) -> None:
    assert "No active service faults." in run_sdk_cli(sim, tmp_path, "fault", "show").stdout
    spot_robot.ensure_client(FaultClient.default_service_name).trigger_service_fault(_fault("GpsLost", "gps"))
    out = run_sdk_cli(sim, tmp_path, "fault", "show").stdout
    assert "GpsLost" in out and "Service Name: gps" in out
