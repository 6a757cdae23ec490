"""Lease service contract, through the SDK's LeaseClient: Spot's resource tree (`body` over
`mobility`), acquiring either, what each lets a client command, and ListLeases as the SDK's
ResourceHierarchy and `python -m bosdyn.client HOST lease list` read it; a lease taken by another
client fails the first one's commands, and a silent holder goes stale."""

from __future__ import annotations

from pathlib import Path

import pytest
from bosdyn.api import lease_pb2, robot_state_pb2
from bosdyn.client.exceptions import LeaseUseError
from bosdyn.client.lease import Lease, LeaseClient, ResourceAlreadyClaimedError
from bosdyn.client.lease_resource_hierarchy import ResourceHierarchy
from bosdyn.client.power import PowerClient, power_on_motors
from bosdyn.client.robot import Robot
from bosdyn.client.robot_command import RobotCommandBuilder, RobotCommandClient
from bosdyn.client.robot_state import RobotStateClient
from support.sim_sdk import run_bosdyn_cli, standing, wait_until

from sim.server import SimServer
from sim.testing import close_sdk, connect_sdk, sdk_robot

LeaseUseResult = lease_pb2.LeaseUseResult


def leases(robot: Robot) -> LeaseClient:
    return robot.ensure_client(LeaseClient.default_service_name)


def listed(robot: Robot) -> dict[str, lease_pb2.LeaseResource]:
    return {r.resource: r for r in leases(robot).list_leases()}


def test_resource_tree_is_body_over_mobility(spot_robot: Robot) -> None:
    response = leases(spot_robot).list_leases_full()
    hierarchy = ResourceHierarchy(response.resource_tree)
    assert hierarchy.get_resource() == "body"
    assert hierarchy.has_resource("mobility")
    assert set(hierarchy.leaf_resources()) == {"mobility"}
    assert {r.resource for r in response.resources} == {"body", "mobility"}
    assert not any(r.HasField("lease") for r in response.resources)  # nobody holds anything yet


def test_holding_body_holds_mobility(sim: SimServer, spot_robot: Robot) -> None:
    body = leases(spot_robot).acquire()
    resources = listed(spot_robot)
    assert resources["body"].lease.sequence == body.lease_proto.sequence
    assert resources["mobility"].lease.sequence == body.lease_proto.sequence
    assert resources["mobility"].lease_owner.client_name == resources["body"].lease_owner.client_name
    with sdk_robot(sim, "other") as other:
        for resource in ("body", "mobility"):
            with pytest.raises(ResourceAlreadyClaimedError):
                leases(other).acquire(resource)


def test_a_mobility_lease_drives_the_legs_but_not_the_power(sim: SimServer, spot_robot: Robot) -> None:
    with sdk_robot(sim, "owner") as owner, standing(owner):
        pass  # someone else powered the robot on, stood it up and handed it back
    mobility = leases(spot_robot).acquire("mobility")
    assert mobility.lease_proto.resource == "mobility"
    resources = listed(spot_robot)
    assert resources["mobility"].lease.sequence == mobility.lease_proto.sequence
    assert not resources["body"].HasField("lease")  # the legs' holder does not hold the body
    with sdk_robot(sim, "other") as other, pytest.raises(ResourceAlreadyClaimedError):
        leases(other).acquire("body")

    commands = spot_robot.ensure_client(RobotCommandClient.default_service_name)
    stand = RobotCommandBuilder.synchro_stand_command()
    command_id = commands.robot_command(stand, lease=Lease(mobility.lease_proto).create_sublease().lease_proto)
    assert command_id > 0
    power = spot_robot.ensure_client(PowerClient.default_service_name)
    with pytest.raises(LeaseUseError) as refused:
        power.fan_power_command(percent_power=50, duration=5, lease=mobility.lease_proto)
    assert refused.value.response.lease_use_result.status == LeaseUseResult.STATUS_INVALID_LEASE


def test_taking_body_makes_a_mobility_holders_commands_older(sim: SimServer, spot_robot: Robot) -> None:
    with sdk_robot(sim, "owner") as owner, standing(owner):
        pass
    mobility = leases(spot_robot).acquire("mobility")
    with sdk_robot(sim, "tablet") as tablet:
        leases(tablet).take("body")
        commands = spot_robot.ensure_client(RobotCommandClient.default_service_name)
        with pytest.raises(LeaseUseError) as refused:
            commands.robot_command(RobotCommandBuilder.synchro_sit_command(), lease=mobility.lease_proto)
        assert refused.value.response.lease_use_result.status == LeaseUseResult.STATUS_OLDER
        assert listed(tablet)["body"].lease_owner.client_name.startswith("tablet")


def test_returning_a_mobility_lease_frees_it(spot_robot: Robot) -> None:
    client = leases(spot_robot)
    mobility = client.acquire("mobility")
    client.return_lease(mobility)
    assert not listed(spot_robot)["mobility"].HasField("lease")
    client.acquire("body")  # free again


def test_unknown_resources_are_refused(spot_robot: Robot) -> None:
    with pytest.raises(Exception, match="INVALID_RESOURCE|InvalidResource"):
        leases(spot_robot).acquire("arm")


def test_bosdyn_cli_lease_list(sim: SimServer, spot_robot: Robot, tmp_path: Path) -> None:
    leases(spot_robot).acquire()
    result = run_bosdyn_cli(sim, tmp_path, "lease", "list")
    assert result.returncode == 0 and not result.stderr, result.stderr
    assert result.stdout.count('resource: "body"') >= 1 and result.stdout.count('resource: "mobility"') >= 1
    assert "lease_owner" in result.stdout


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
