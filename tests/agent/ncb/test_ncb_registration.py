"""`spot-agent worker` with a robot: it connects as `spot-agent run` does and registers in the
robot's directory with the SDK's `DirectoryRegistrationKeepAlive`. The sim does not offer
directory registration yet (gRPC UNIMPLEMENTED): the worker must say so and exit 3, not hang or
print a traceback. Registration that succeeds is tested end to end once the sim serves it."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from configs import SHIPPED_DIR
from sim.server import SimServer
from tests.support.agent_process import ENV


def _config(tmp_path: Path, sim: SimServer, **robot: object) -> Path:
    data = yaml.safe_load((SHIPPED_DIR / "sim.yaml").read_text())
    data["robot"].update({"hostname": sim.host, "port": sim.port, "ca_cert": str(sim.ca_path),
                          "auth": {"username": sim.user, "password": sim.password,
                                   "username_env": "UNUSED_USER", "password_env": "UNUSED_PASSWORD"}, **robot})
    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _worker(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "worker", "--config", str(config), "--host", "127.0.0.1", "--port", "0",
         "--workers", "1", *args],
        capture_output=True, text=True, env=ENV, timeout=120)


def test_a_robot_without_directory_registration_ends_the_worker_with_the_reason(
    sim: SimServer, tmp_path: Path
) -> None:
    done = _worker(_config(tmp_path, sim), "--service-name", "my-worker")
    assert done.returncode == 3, done.stderr
    assert "does not offer directory registration" in done.stderr
    assert "UNIMPLEMENTED" in done.stderr or "Unimplemented" in done.stderr
    assert "--no-robot" in done.stderr  # what to do instead
    assert "Traceback" not in done.stderr
    assert "worker stats (final)" in done.stdout  # it served, then stopped cleanly


def test_an_unreachable_robot_ends_the_worker_after_the_retries(sim: SimServer, tmp_path: Path) -> None:
    config = _config(tmp_path, sim, connect_retries=2, connect_backoff_s=0.05)
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
