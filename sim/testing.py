"""Helpers for tests (and other tools) that drive the sim through the real Spot SDK."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bosdyn.client
from bosdyn.client.robot import Robot

from sim.scene import Scenario
from sim.server import SimServer


def connect_sdk(sim: SimServer, name: str = "sim-test", authenticate: bool = True, time_sync: bool = True) -> Robot:
    """A `bosdyn.client.robot.Robot` for `sim`: trusts the sim's CA, uses its port, logged in, time-synced.

    Exactly what a program does for a real robot, except the two sim-specific lines
    (`cert_resource_glob` and `update_secure_channel_port`).
    """
    sdk = bosdyn.client.create_standard_sdk(name, cert_resource_glob=str(sim.ca_path))
    robot = sdk.create_robot(sim.host)
    robot.update_secure_channel_port(sim.port)
    if authenticate:
        robot.authenticate(sim.user, sim.password)
        if time_sync:
            robot.time_sync.wait_for_sync(timeout_sec=5.0)
    return robot


def close_sdk(robot: Robot) -> None:
    """Stop the SDK robot's background threads (time sync, token refresh) and close its channels."""
    robot._shutdown()
    robot.shutdown()


@contextmanager
def sdk_robot(sim: SimServer, name: str = "sim-test") -> Iterator[Robot]:
    robot = connect_sdk(sim, name)
    try:
        yield robot
    finally:
        close_sdk(robot)


@contextmanager
def running_sim(scenario: str | Path | Scenario | None = None, **options: Any) -> Iterator[SimServer]:
    """A started sim on an ephemeral port (`SimServer.start` options), stopped afterwards."""
    server = SimServer.start(scenario, port=0, **options)
    try:
        yield server
    finally:
        server.stop()
