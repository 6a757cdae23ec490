"""`spot-agent worker`: the agent's perception as a Network Compute Bridge worker.

Serves `agent.ncb` on plain gRPC (`--host`/`--port`, 50051 by default, as the SDK's example
workers do). With a robot it also registers in the robot's directory under `--service-name`
(same connection options and credentials as `spot-agent run`) and keeps that entry alive until
it stops; `--no-robot` serves clients that call it directly.

Exit codes: 0 stopped by a signal; 2 bad configuration or the address cannot be served; 3
cannot reach or log in to the robot, or the robot will not register the worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any, NoReturn

import typer

import configs
from agent.run import EXIT_CONFIG, EXIT_CONNECT, _config_from_options

log = logging.getLogger(__name__)


def worker_command(
    config: str = typer.Option(
        "agent", "--config", "-c",
        help="Agent settings (its `detector:` section decides the models): a YAML file, or the name of a "
        f"shipped one ({', '.join(configs.shipped_names(configs.AGENT_CONFIGS))}).",
    ),
    no_robot: bool = typer.Option(False, "--no-robot", help="Only serve; do not register with a robot."),
    host: str = typer.Option("0.0.0.0", "--host", help="Address to serve on (0.0.0.0: every interface)."),
    port: int = typer.Option(50051, "--port", min=0, max=65535,
                             help="Port to serve on (a CORE I/O payload may open 21000-22000; 0: any free port)."),
    service_name: str = typer.Option("spot-cue-agent-worker", "--service-name",
                                     help="Name in the robot's directory, which clients pass as --service."),
    host_ip: str | None = typer.Option(
        None, "--host-ip", help="Address the robot dials to reach this worker (default: this machine's address "
        "on the route to the robot)."),
    hostname: str | None = typer.Option(None, "--hostname", help="Robot address (overrides config)."),
    robot_port: int | None = typer.Option(None, "--robot-port", help="Robot TLS port (overrides config)."),
    ca: Path | None = typer.Option(None, "--ca", help="CA certificate to trust instead of the SDK's."),
    payload_credentials_file: Path | None = typer.Option(
        None, "--payload-credentials-file",
        help="Authenticate as a payload: file with the GUID (line 1) and secret (line 2)."),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Requests computed at once, one set of interpreters each "
        "(default: cores / the detector's threads)."),
    max_pending: int | None = typer.Option(
        None, "--max-pending", min=1, help="Requests held at once (computing or waiting); more are refused "
        "with RESOURCE_EXHAUSTED at once (default: 4 per worker)."),
    stats_interval: float = typer.Option(60.0, "--stats-interval", min=0.1, help="Seconds between stats reports."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
) -> None:
    """Serve the agent's perception to Spot's Network Compute Bridge (tablet, Autowalk, SDK programs)."""
    from agent.core.logs import setup_logging

    setup_logging(log_level.upper())
    cfg = _config_from_options(config, {
        "robot.hostname": hostname,
        "robot.port": robot_port,
        "robot.ca_cert": ca.resolve() if ca else None,
        "robot.auth.payload_credentials_file": payload_credentials_file.resolve() if payload_credentials_file else None,
    })
    pool = workers or max(1, (os.cpu_count() or 1) // cfg.detector.num_threads)
    stop = _stop_on_signals()
    server = _serve(cfg, host, port, pool, max_pending or 4 * pool)
    try:
        with contextlib.ExitStack() as robot_stack:
            if not no_robot:
                _register(cfg, service_name, host_ip, server.port, stop, robot_stack)
            _report_until(stop, server.worker.stats, stats_interval)
    finally:
        server.stop()
        _print_stats(server.worker.stats, "final")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(sig: int, _frame: Any) -> None:
        log.warning("stop requested", extra={"event": "worker_stop_requested", "signal": signal.Signals(sig).name})
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handle)
    return stop


def _serve(cfg: Any, host: str, port: int, pool: int, max_pending: int) -> Any:
    from agent.ncb.server import BindError, start_worker_server
    from configs.loading import ConfigError
    from perception.detector import ModelIntegrityError

    try:
        server = start_worker_server(cfg.detector, host, port, pool, max_pending)
    except (BindError, ConfigError, ModelIntegrityError) as exc:
        _fail("cannot start", str(exc), EXIT_CONFIG)
    names = ", ".join(m.name for m in server.worker.offered)
    typer.echo(f"spot-agent worker: serving on {host}:{server.port} ({pool} at once, {max_pending} held): "
               f"models {names}", err=False)
    return server


def _register(cfg: Any, service_name: str, host_ip: str | None, port: int, stop: threading.Event,
              stack: contextlib.ExitStack) -> None:
    """Connect as `spot-agent run` does and register; exit 3 with the reason when that fails.
    Leaving `stack` unregisters and closes the robot connection."""
    from agent.ncb.registration import RegistrationError, keep_registered, self_ip_for, unregister
    from agent.shutdown import Interrupted
    from agent.spot.connect import ConnectError, authenticate, connect, resolve_credentials

    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise Interrupted("stopped while connecting")

    try:
        creds = resolve_credentials(cfg.robot.auth)
        robot = connect(cfg.robot, creds, sleep)
        stack.enter_context(robot)  # leaving it stops the SDK's time-sync and token threads
        stack.callback(robot.shutdown)
        ip = host_ip or self_ip_for(cfg.robot.hostname)
        keep_alive = keep_registered(robot, service_name, ip, port, stop,
                                     relogin=lambda: authenticate(robot, creds, cfg.robot.rpc_timeout_s))
        if keep_alive is not None:
            stack.callback(unregister, keep_alive)
    except Interrupted:
        return
    except (ConnectError, RegistrationError) as exc:
        _fail("cannot register with the robot", str(exc), EXIT_CONNECT)
    except OSError as exc:  # no route to the robot to take this machine's address from
        _fail("cannot register with the robot", f"cannot find this machine's address towards "
              f"{cfg.robot.hostname} (give --host-ip): {exc}", EXIT_CONNECT)


def _report_until(stop: threading.Event, stats: Any, interval_s: float) -> None:
    while not stop.wait(interval_s):
        _print_stats(stats, "periodic")


def _print_stats(stats: Any, when: str) -> None:
    lines = stats.lines()
    log.info("worker stats", extra={"event": "worker_stats", "when": when, **{"stats": stats.as_dict()}})
    typer.echo(f"worker stats ({when}):\n" + "\n".join(f"  {line}" for line in lines))


def _fail(what: str, message: str, code: int) -> NoReturn:
    log.error(what, extra={"event": "worker_failed", "error": message})
    typer.echo(f"spot-agent worker: {message}", err=True)
    raise typer.Exit(code)
