"""Connecting and starting against the sim over real gRPC: auth kinds, clear failures, E-Stop
and lease preconditions, and the `spot-agent run` exit codes."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import typer
import yaml
from bosdyn.client.estop import EstopClient, EstopEndpoint
from bosdyn.client.lease import LeaseClient
from typer.testing import CliRunner

from agent.config import AgentConfig, config_overrides
from agent.core.seams import EStopped, RobotUnavailable
from agent.demo import sim_agent_config
from agent.run import run_command
from agent.spot.connect import ConnectError, connect, resolve_credentials
from agent.spot.robot import SpotRobot
from configs import SHIPPED_DIR as CONFIG_DIR
from sim.server import DEFAULT_PAYLOAD_GUID, DEFAULT_PAYLOAD_SECRET, SimServer
from sim.testing import close_sdk, connect_sdk


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cfg(sim: SimServer, **changes: object) -> AgentConfig:
    return config_overrides(sim_agent_config(sim), **changes)


def test_payload_credentials_authenticate(sim: SimServer, tmp_path: Path) -> None:
    creds_file = tmp_path / "payload_guid_and_secret"
    creds_file.write_text(f"{DEFAULT_PAYLOAD_GUID}\n{DEFAULT_PAYLOAD_SECRET}\n")
    cfg = _cfg(sim, **{"robot.auth.payload_credentials_file": creds_file})
    creds = resolve_credentials(cfg.robot.auth, {})
    assert creds.kind == "payload"
    robot = connect(cfg.robot, creds)
    try:
        assert robot.time_sync.has_established_time_sync
        assert robot.get_cached_robot_id().serial_number
    finally:
        close_sdk(robot)


def test_wrong_password_fails_at_once_with_a_clear_message(sim: SimServer) -> None:
    cfg = _cfg(sim, **{"robot.auth.password": "wrong", "robot.connect_retries": 5})
    started = time.monotonic()
    with pytest.raises(ConnectError, match="rejected the user credentials"):
        connect(cfg.robot, resolve_credentials(cfg.robot.auth, {}))
    assert time.monotonic() - started < 2.0  # not retried: retrying cannot fix it


def test_unreachable_robot_fails_after_the_retries(sim: SimServer) -> None:
    cfg = _cfg(sim, **{"robot.port": _free_port(), "robot.connect_retries": 3,
                       "robot.connect_backoff_s": 0.05})
    waits: list[float] = []
    with pytest.raises(ConnectError, match=r"cannot reach the robot at 127\.0\.0\.1:\d+.*after 3 attempts"):
        connect(cfg.robot, resolve_credentials(cfg.robot.auth, {}), sleep=waits.append)
    assert waits == [0.05, 0.1]


def test_engaged_estop_blocks_motion_unless_the_agent_registers_its_own(sim: SimServer) -> None:
    operator = connect_sdk(sim, "operator-estop")
    endpoint = EstopEndpoint(operator.ensure_client(EstopClient.default_service_name), "op", 9.0)
    endpoint.force_simple_setup()
    endpoint.stop()  # the operator's E-Stop is pressed
    agent_sdk = connect_sdk(sim, "agent")
    cfg = _cfg(sim, **{"robot.register_estop": False})
    robot = SpotRobot(agent_sdk, cfg.robot)
    try:
        with pytest.raises(EStopped, match="E-Stopped or has no E-Stop configured"):
            robot.start()
        robot.close()
        assert sim.leases.holder() is None  # refused before taking anything
    finally:
        close_sdk(agent_sdk)
        close_sdk(operator)


def test_lease_held_by_someone_else_is_never_taken(sim: SimServer) -> None:
    tablet = connect_sdk(sim, "tablet")
    tablet.ensure_client(LeaseClient.default_service_name).acquire()
    agent_sdk = connect_sdk(sim, "agent")
    cfg = _cfg(sim)
    robot = SpotRobot(agent_sdk, cfg.robot)
    try:
        with pytest.raises(RobotUnavailable, match="lease is held by another client"):
            robot.start()
        robot.close()
        holder = sim.leases.holder()
        assert holder is not None and holder.client_name.startswith("tablet")
    finally:
        close_sdk(agent_sdk)
        close_sdk(tablet)


@pytest.fixture
def cli() -> typer.Typer:
    """`spot-agent` with the `run` command, as agent/cli.py registers it."""
    app = typer.Typer()
    app.command("run")(run_command)

    @app.command("other")
    def _other() -> None:  # a second command keeps "run" a subcommand
        pass

    return app


def _write_config(path: Path, sim: SimServer, **robot: object) -> Path:
    data = yaml.safe_load((CONFIG_DIR / "sim.yaml").read_text())
    data["rules"] = str(CONFIG_DIR / "rules" / "default.yaml")
    data["robot"].update({"port": sim.port, "ca_cert": str(sim.ca_path), **robot})
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_run_exit_codes_and_messages(sim: SimServer, tmp_path: Path, cli: typer.Typer) -> None:
    runner = CliRunner()
    bad_auth = _write_config(tmp_path / "a.yaml", sim, auth={"username": "spot", "password": "nope"})
    result = runner.invoke(cli, ["run", "--config", str(bad_auth), "--duration", "1"])
    assert result.exit_code == 3
    assert "rejected the user credentials" in result.output

    unreachable = _write_config(tmp_path / "b.yaml", sim, connect_retries=2, connect_backoff_s=0.05)
    result = runner.invoke(cli, ["run", "--config", str(unreachable), "--port", str(_free_port())])
    assert result.exit_code == 3 and "cannot reach the robot" in result.output

    bad = tmp_path / "c.yaml"
    bad.write_text("safety: {watchdog_s: -1}\n")
    result = runner.invoke(cli, ["run", "--config", str(bad)])
    assert result.exit_code == 2 and "safety.watchdog_s" in result.output


def test_cli_run_drives_the_sim_for_a_duration(sim: SimServer, tmp_path: Path, cli: typer.Typer) -> None:
    cfg = _write_config(tmp_path / "ok.yaml", sim)
    result = CliRunner().invoke(cli, ["run", "--config", str(cfg), "--duration", "2"])
    assert result.exit_code == 0, result.output
    assert sim.leases.holder() is None  # lease handed back at the end
