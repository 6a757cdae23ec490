"""Directory registration on the sim through the SDK's own clients, unmodified: what a payload or
a network compute worker does to appear in a robot's directory (register, heartbeats, liveness
faults, update, unregister, re-registration after a robot restart)."""

from __future__ import annotations

import time

import pytest
from bosdyn.client.directory import DirectoryClient, NonexistentServiceError
from bosdyn.client.directory_registration import (
    DirectoryRegistrationClient,
    DirectoryRegistrationKeepAlive,
    ServiceAlreadyExistsError,
    ServiceDoesNotExistError,
)
from bosdyn.client.exceptions import InvalidRequestError
from bosdyn.client.robot import Robot
from bosdyn.client.robot_state import RobotStateClient

from sim.server import DEFAULT_PAYLOAD_GUID, DEFAULT_PAYLOAD_SECRET, SimServer
from sim.services.directory import LIVENESS_FAULT_NAME
from sim.testing import close_sdk, connect_sdk
from tests.support.sim_sdk import wait_until

WORKER_TYPE = "bosdyn.api.NetworkComputeBridgeWorker"


def entries(robot: Robot) -> dict[str, object]:
    return {entry.name: entry for entry in robot.ensure_client(DirectoryClient.default_service_name).list()}


def liveness_faults(robot: Robot, name: str) -> list[object]:
    state = robot.ensure_client(RobotStateClient.default_service_name).get_robot_state()
    return [
        f for f in state.service_fault_state.faults
        if f.fault_id.service_name == name and f.fault_id.fault_name == LIVENESS_FAULT_NAME
    ]


def test_register_lists_the_service_with_its_entry_and_endpoint(sim: SimServer, spot_robot: Robot) -> None:
    registration = spot_robot.ensure_client(DirectoryRegistrationClient.default_service_name)
    registration.register("my-worker", WORKER_TYPE, "my-worker", "10.0.0.7", 50051, liveness_timeout_secs=4.0)

    entry = spot_robot.ensure_client(DirectoryClient.default_service_name).get_entry("my-worker")
    assert entry.type == WORKER_TYPE
    assert entry.authority == "my-worker.spot.robot"  # a bare label becomes an address (directory.proto)
    assert entry.liveness_timeout_secs == 4.0
    assert entry.user_token_required
    assert entry.host_payload_guid == ""  # registered with a user's token
    assert "my-worker" in entries(spot_robot) and "image" in entries(spot_robot)
    stored = sim.directory.registration("my-worker")
    assert stored is not None and stored.address == "10.0.0.7:50051"


def test_spot_statuses_for_taken_and_unknown_names(sim: SimServer, spot_robot: Robot) -> None:
    registration = spot_robot.ensure_client(DirectoryRegistrationClient.default_service_name)
    registration.register("svc", "my.Type", "svc.spot.robot", "10.0.0.7", 5000)
    with pytest.raises(ServiceAlreadyExistsError):
        registration.register("svc", "my.Type", "svc.spot.robot", "10.0.0.8", 6000)
    with pytest.raises(ServiceAlreadyExistsError):  # the robot's own services are taken names too
        registration.register("image", "my.Type", "other.spot.robot", "10.0.0.7", 5000)
    with pytest.raises(ServiceDoesNotExistError):
        registration.update("nobody", "my.Type", "nobody.spot.robot", "10.0.0.7", 5000)
    with pytest.raises(ServiceDoesNotExistError):
        registration.unregister("nobody")
    with pytest.raises(InvalidRequestError):  # (authority, type) routes calls: it must be unique
        registration.register("svc2", "my.Type", "svc.spot.robot", "10.0.0.7", 5001)
    with pytest.raises(InvalidRequestError):
        registration.unregister("image")

    registration.update("svc", "my.Type", "svc.spot.robot", "10.0.0.9", 7000)
    stored = sim.directory.registration("svc")
    assert stored is not None and stored.address == "10.0.0.9:7000"

    registration.unregister("svc")
    assert "svc" not in entries(spot_robot)
    with pytest.raises(NonexistentServiceError):
        spot_robot.ensure_client(DirectoryClient.default_service_name).get_entry("svc")


def test_payload_registration_carries_the_payload_guid(sim: SimServer) -> None:
    robot = connect_sdk(sim, "payload", authenticate=False)
    try:
        robot.authenticate_from_payload_credentials(DEFAULT_PAYLOAD_GUID, DEFAULT_PAYLOAD_SECRET)
        registration = robot.ensure_client(DirectoryRegistrationClient.default_service_name)
        registration.register("payload-svc", WORKER_TYPE, "payload-svc.spot.robot", "192.168.50.5", 21050)
        assert entries(robot)["payload-svc"].host_payload_guid == DEFAULT_PAYLOAD_GUID  # type: ignore[attr-defined]
    finally:
        close_sdk(robot)


def test_keepalive_heartbeats_lapse_into_a_liveness_fault_and_reregistration_clears_it(spot_robot: Robot) -> None:
    """The SDK's DirectoryRegistrationKeepAlive as `python/examples/service_faults` uses it."""
    client = spot_robot.ensure_client(DirectoryRegistrationClient.default_service_name)
    keepalive = DirectoryRegistrationKeepAlive(client, rpc_interval_seconds=0.2)
    keepalive.start("live-svc", WORKER_TYPE, "live-svc", "127.0.0.1", 50051, liveness_timeout_secs=1.5)
    first = entries(spot_robot)["live-svc"].last_update.ToNanoseconds()  # type: ignore[attr-defined]
    assert wait_until(lambda: entries(spot_robot)["live-svc"].last_update.ToNanoseconds() > first, 2.0)  # type: ignore[attr-defined]
    time.sleep(2.0)  # longer than the liveness timeout: the heartbeats keep it alive
    assert liveness_faults(spot_robot, "live-svc") == []

    keepalive.shutdown()  # heartbeats stop: the robot raises a fault and keeps the entry
    assert wait_until(lambda: len(liveness_faults(spot_robot, "live-svc")) == 1, 5.0)
    assert "live-svc" in entries(spot_robot)

    with DirectoryRegistrationKeepAlive(client, rpc_interval_seconds=0.2) as again:
        again.start("live-svc", WORKER_TYPE, "live-svc", "127.0.0.1", 50051, liveness_timeout_secs=1.5)
        assert liveness_faults(spot_robot, "live-svc") == []
    # Leaving the `with` unregisters: entry and fault are gone.
    assert "live-svc" not in entries(spot_robot)
    time.sleep(2.0)  # past the timeout: an unregistered service raises no fault
    assert liveness_faults(spot_robot, "live-svc") == []


def test_keepalive_registers_again_after_a_robot_restart(sim: SimServer) -> None:
    robot = connect_sdk(sim, "restart-keepalive")
    restarted = None
    try:
        client = robot.ensure_client(DirectoryRegistrationClient.default_service_name)
        with DirectoryRegistrationKeepAlive(client, rpc_interval_seconds=0.2) as keepalive:
            keepalive.start("survivor", WORKER_TYPE, "survivor", "127.0.0.1", 50051)
            restarted = sim.restart()  # a rebooted robot forgets every registration
            assert restarted.directory.registration("survivor") is None
            robot.authenticate(sim.user, sim.password)  # its old tokens are void, as after a reboot
            assert wait_until(lambda: restarted.directory.registration("survivor") is not None, 3.0)
        assert restarted.directory.registration("survivor") is None  # unregistered on exit
    finally:
        close_sdk(robot)
        if restarted is not None:
            restarted.stop()
