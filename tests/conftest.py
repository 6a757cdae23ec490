"""Shared fixtures: a running simulated Spot and an SDK robot connected to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bosdyn.client.robot import Robot

from sim.server import SimServer
from sim.testing import close_sdk, connect_sdk


@pytest.fixture
def sim() -> Iterator[SimServer]:
    """A started simulated robot (default scenario) on an ephemeral port."""
    server = SimServer.start(port=0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def spot_robot(sim: SimServer) -> Iterator[Robot]:
    """An authenticated, time-synced bosdyn Robot talking to `sim` over TLS."""
    robot = connect_sdk(sim, "spot-robot-fixture")
    try:
        yield robot
    finally:
        close_sdk(robot)
