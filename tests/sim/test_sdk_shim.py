"""A stock SDK program (default CA, default port, credentials from the environment) reaches the
sim with nothing but environment variables, through the sitecustomize the sim writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sim.sdk_shim import example_env, write_shim
from sim.server import SimServer

# What a stock example does: no cert glob, no port, bosdyn.client.util.authenticate().
STOCK_PROGRAM = """
import sys
import bosdyn.client, bosdyn.client.util
sdk = bosdyn.client.create_standard_sdk('StockClient')
robot = sdk.create_robot(sys.argv[1])
bosdyn.client.util.authenticate(robot)
robot.time_sync.wait_for_sync()
print(robot.get_id().serial_number, robot.is_estopped())
"""


def test_stock_program_connects_through_the_shim(sim: SimServer, tmp_path: Path) -> None:
    shim_dir = write_shim(tmp_path / "shim")
    env = {**os.environ, **example_env(shim_dir, sim.ca_path, sim.port, sim.user, sim.password)}
    result = subprocess.run(
        [sys.executable, "-c", STOCK_PROGRAM, sim.host], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["spot-sim-0001", "False"]


def test_shim_does_nothing_without_its_variables(tmp_path: Path) -> None:
    shim_dir = write_shim(tmp_path / "shim")
    env = {k: v for k, v in os.environ.items() if k not in ("SPOT_SIM_CA", "SPOT_SIM_PORT")}
    env["PYTHONPATH"] = str(shim_dir)
    probe = "import sys, bosdyn.client.robot as r; print(r._DEFAULT_SECURE_CHANNEL_PORT, 'bosdyn.client.sdk' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "443"
