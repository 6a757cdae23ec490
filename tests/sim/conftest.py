"""Fixtures shared by the sim's tests (`sim` and `spot_robot` come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bosdyn.client.robot import Robot
from bosdyn.client.robot_command import RobotCommandClient
from support.sim_sdk import standing


@pytest.fixture
def commanded(spot_robot: Robot) -> Iterator[tuple[Robot, RobotCommandClient]]:
    """Lease held (with keepalive), motors on, standing."""
    with standing(spot_robot) as robot_and_client:
        yield robot_and_client
