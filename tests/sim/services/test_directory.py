"""The directory service: every service the sim serves, with the SDK's types and authorities; services it does not simulate answer UNIMPLEMENTED."""

from __future__ import annotations

import pytest
from bosdyn.client.exceptions import UnimplementedError
from bosdyn.client.graph_nav import GraphNavClient
from bosdyn.client.robot import Robot


def test_directory_lists_services_with_sdk_types_and_authorities(spot_robot: Robot) -> None:
    entries = {entry.name: entry for entry in spot_robot.list_services()}
    assert entries["estop"].type == "bosdyn.api.EstopService"
    assert entries["image"].type == "bosdyn.api.ImageService"
    assert entries["robot-command"].authority == "api.spot.robot"
    assert entries["auth"].authority == "auth.spot.robot"
    assert entries["robot-id"].authority == "id.spot.robot"
    assert entries["payload-registration"].authority == "payload-registration.spot.robot"
    assert spot_robot.get_id().species == "spot"


def test_services_not_simulated_answer_unimplemented(spot_robot: Robot) -> None:
    # GraphNav is not simulated (not in the directory): reached under the robot's API authority,
    # its RPCs answer gRPC UNIMPLEMENTED, which the SDK raises as UnimplementedError.
    channel = spot_robot.ensure_secure_channel("api.spot.robot")
    client = spot_robot.ensure_client(GraphNavClient.default_service_name, channel=channel)
    with pytest.raises(UnimplementedError):
        client.get_localization_state()
