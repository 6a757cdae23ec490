"""`spot-agent worker` with a robot: it connects as `spot-agent run` does and registers in the
robot's directory with the SDK's `DirectoryRegistrationKeepAlive`. The
robot must list the worker until it stops, and drop it when it unregisters."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from bosdyn.client.directory import DirectoryClient
from bosdyn.client.robot import Robot

from sim.server import SimServer
from tests.support.agent_process import ENV, wait_for
from tests.support.ncb import WorkerProcess, worker_config


def _worker(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "worker", "--config", str(config), "--host", "127.0.0.1", "--port", "0",
         "--workers", "1", *args],
        capture_output=True, text=True, env=ENV, timeout=120)


def test_the_worker_registers_in_the_directory_and_unregisters_on_exit(
    sim: SimServer, spot_robot: Robot, tmp_path: Path
) -> None:
    """What the stock `tensorflow_server.py` registers: type `bosdyn.api.NetworkComputeBridgeWorker`
    under `--service-name` (at `--host-ip` and the worker's port); gone after SIGINT."""
    worker = WorkerProcess("--config", str(worker_config(tmp_path, sim)), "--service-name", "my-worker",
                           "--host-ip", "127.0.0.1")
    try:
        directory = spot_robot.ensure_client(DirectoryClient.default_service_name)

        def entry() -> object:
            return next((e for e in directory.list() if e.name == "my-worker"), None)

        found = wait_for("the worker in the directory", entry, 60, every=0.2)
        assert found.type == "bosdyn.api.NetworkComputeBridgeWorker"  # type: ignore[attr-defined]
        assert found.authority == "my-worker.spot.robot"  # type: ignore[attr-defined]
        code, err = worker.stop()
        assert code == 0 and "Traceback" not in err
        assert entry() is None
    finally:
        worker.kill()


def test_an_unreachable_robot_ends_the_worker_after_the_retries(sim: SimServer, tmp_path: Path) -> None:
    config = worker_config(tmp_path, sim, connect_retries=2, connect_backoff_s=0.05)
    done = _worker(config, "--robot-port", "1")
    assert done.returncode == 3, done.stderr
    assert "cannot reach the robot" in done.stderr and "Traceback" not in done.stderr


def test_the_sdk_keepalive_failures_are_logged_as_one_line_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The SDK's keep-alive logs every failed re-registration with `logger.exception` (a robot
    restart makes several); the worker's log gets one warning line naming the error."""
    from bosdyn.client.exceptions import UnauthenticatedError

    from agent.ncb.registration import sdk_log

    with caplog.at_level(logging.INFO, logger=sdk_log.name):
        try:
            raise UnauthenticatedError(None, "The user needs to authenticate")
        except UnauthenticatedError:
            sdk_log.exception("Reregistration failed with RpcError")
    (record,) = caplog.records
    assert record.levelname == "WARNING" and record.exc_info is None
    assert record.getMessage() == "Reregistration failed with RpcError: UnauthenticatedError: The user needs to authenticate"
