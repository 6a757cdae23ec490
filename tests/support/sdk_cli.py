"""The SDK's own command-line tool (`python -m bosdyn.client`, shipped in bosdyn-client) run
unmodified against a sim, through the sim's SDK shim (no CA or port on its command line)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sim.sdk_shim import example_env, write_shim
from sim.server import SimServer


def run_sdk_cli(
    sim: SimServer, shim_dir: Path, *args: str, timeout_s: float = 90.0, exit_code: int = 0
) -> subprocess.CompletedProcess[str]:
    """`python -m bosdyn.client <sim host> <args>` as a user types it; fails the test unless it exits
    with `exit_code` (the SDK's `payload register` exits 1 even when it succeeds: its command
    returns None, which the tool takes for failure, on a robot too)."""
    env = {**os.environ, **example_env(write_shim(shim_dir), sim.ca_path, sim.port, sim.user, sim.password)}
    result = subprocess.run(
        [sys.executable, "-m", "bosdyn.client", sim.host, *args],
        env=env, capture_output=True, text=True, timeout=timeout_s,
    )
    assert result.returncode == exit_code, f"bosdyn.client {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result
