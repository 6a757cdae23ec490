"""Helpers for tests that drive the sim through the real Spot SDK: polling, a commanded robot,
and the SDK's own command-line tool (`python -m bosdyn.client`) run against the sim."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bosdyn.client.lease import LeaseClient, LeaseKeepAlive
from bosdyn.client.power import power_on_motors
from bosdyn.client.robot import Robot
from bosdyn.client.robot_command import RobotCommandClient, blocking_stand

from sim.sdk_shim import example_env, write_shim
from sim.server import SimServer


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@contextmanager
def standing(robot: Robot) -> Iterator[tuple[Robot, RobotCommandClient]]:
    """Lease held (with keepalive, body), motors on, standing; the lease is returned after."""
    lease_client = robot.ensure_client(LeaseClient.default_service_name)
    with LeaseKeepAlive(lease_client, must_acquire=True, return_at_exit=True):
        power_on_motors(robot.ensure_client("power"), timeout_sec=5, update_frequency=20)
        command_client = robot.ensure_client(RobotCommandClient.default_service_name)
        blocking_stand(command_client, timeout_sec=5, update_frequency=20)
        yield robot, command_client


def run_bosdyn_cli(sim: SimServer, tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python -m bosdyn.client <sim host> ARGS...` as a user runs it: stock SDK, login from the
    environment, the sim reached through its SDK shim (its CA and port)."""
    shim_dir = write_shim(tmp_path / "shim")
    env = {**os.environ, **example_env(shim_dir, sim.ca_path, sim.port, sim.user, sim.password)}
    return subprocess.run(
        [sys.executable, "-m", "bosdyn.client", sim.host, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
    )
