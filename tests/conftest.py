"""Shared fixtures: a running simulated Spot and an SDK robot connected to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bosdyn.client.robot import Robot

from sim.server import SimServer
from sim.testing import running_sim, sdk_robot


@pytest.fixture
def sim() -> Iterator[SimServer]:
    """A started simulated robot (default scenario) on an ephemeral port."""
    with running_sim() as server:
        yield server


@pytest.fixture
def spot_robot(sim: SimServer) -> Iterator[Robot]:
    """An authenticated, time-synced bosdyn Robot talking to `sim` over TLS."""
    with sdk_robot(sim, "spot-robot-fixture") as robot:
        yield robot
