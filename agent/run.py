"""`spot-agent run`: connect to the robot, take the lease, and run the perception pipeline.

Exit codes (for systemd and scripts): 0 finished normally; 2 bad configuration; 3 cannot
reach or authenticate with the robot after the retries (or log in again after it restarted); 4
the robot cannot be driven (E-Stop engaged or missing, lease held by someone else, cannot stand,
motors found off mid-run: see `robot.on_motors_off`); 5 the lease was taken while running (the
agent stopped commanding and left it to the other client); 1 the agent failed (its camera stream
broke; the robot was stopped); 6 the run went on, but its recording stopped early (disk full).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import typer

import configs

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1  # the agent itself failed (its camera stream broke); the robot was stopped
EXIT_CONFIG = 2
EXIT_CONNECT = 3
EXIT_ROBOT_UNAVAILABLE = 4
EXIT_LEASE_LOST = 5
EXIT_RECORDING_FAILED = 6  # the run went on, but its recording stopped early (disk full...)
# How a run the robot ended exits (pipeline report reasons; anything else is 0).
EXIT_CODES = {
    "source_failed": EXIT_FAILED,
    "lease_lost": EXIT_LEASE_LOST,
    "robot_unavailable": EXIT_ROBOT_UNAVAILABLE,
    "cannot_connect": EXIT_CONNECT,
}


@dataclass
class AgentRunResult:
    report: Any  # PipelineReport
    exit_code: int


async def run_agent(
    config: Any,
    duration_s: float | None = None,
    sdk_robot: Any = None,
    stop_on_signals: bool = True,
    on_pipeline: Callable[[Any], None] | None = None,
    record: Path | None = None,
) -> AgentRunResult:
    """Run the agent once against `config.robot` (connecting unless `sdk_robot` is given).

    `record`: write an MCAP recording of the run (frames, results, steps, statuses, commands,
    events) that `spot-agent replay` reproduces. Raises `ConnectError` (cannot reach or
    authenticate) and `RobotUnavailable` (cannot drive); a lease lost while running is reported
    in the result, not raised. `stop_on_signals`: SIGINT/SIGTERM stop the run through its
    clean-up, from before anything is acquired to the end (agent/shutdown.py).
    """
    from agent.shutdown import Interrupted, Shutdown

    shutdown = Shutdown()
    if stop_on_signals:
        shutdown.install()
    try:
        return await _run(config, duration_s, sdk_robot, on_pipeline, record, shutdown)
    except Interrupted:
        log.warning("stopped during start-up; what had been acquired was given back",
                    extra={"event": "stopped_during_startup"})
        return AgentRunResult(_startup_report(), EXIT_OK)
    finally:
        shutdown.uninstall()


def _startup_report() -> Any:
    from agent.core.pipeline import PipelineReport
    from agent.core.stats import PipelineStats

    stats = PipelineStats().as_dict(time.time())
    return PipelineReport(reason="stopped", events=[], stats=stats, detail="stopped during start-up")


async def _run(
    config: Any,
    duration_s: float | None,
    sdk_robot: Any,
    on_pipeline: Callable[[Any], None] | None,
    record: Path | None,
    shutdown: Any,
) -> AgentRunResult:
    from behaviors.config import load_rules
    from perception.perceiver import Perceiver

    # Everything that can be checked without the robot is checked first.
    rules = load_rules(config.rules, cameras=config.cameras.sources)
    # The model loads and verifies now, not in the first detector thread (a remote detector has
    # nothing here to load, and its frames go out whole).
    decode_min_side = (
        None if config.detector.type == "network_compute_bridge" else Perceiver.from_config(config.detector).decode_min_side
    )
    shutdown.check()
    with contextlib.ExitStack() as stack:
        extras = _Extras(config, record, stack)
        if extras.control is not None:
            await extras.control.bind()  # a port in use fails here, before the robot is touched
        try:
            result = await _connect_and_drive(config, rules, decode_min_side, sdk_robot, duration_s,
                                              on_pipeline, extras, shutdown, stack)
        finally:
            if extras.control is not None:
                await extras.control.close()
    # The recorder is closed now (its last flush can fail too): a recording that stopped early
    # makes an otherwise clean run exit non-zero; what the robot did ranks first.
    if extras.recorder is not None and extras.recorder.failed and result.exit_code == EXIT_OK:
        result.report.detail = f"recording stopped: {extras.recorder.failure}"
        result.exit_code = EXIT_RECORDING_FAILED
    return result


async def _connect_and_drive(
    config: Any,
    rules: Any,
    decode_min_side: int | None,
    sdk_robot: Any,
    duration_s: float | None,
    on_pipeline: Callable[[Any], None] | None,
    extras: _Extras,
    shutdown: Any,
    stack: contextlib.ExitStack,
) -> AgentRunResult:
    from agent.spot.connect import connect, resolve_credentials
    from agent.spot.robot import SpotRobot

    creds = None
    if sdk_robot is None:
        shutdown.check()
        creds = resolve_credentials(config.robot.auth)
        sdk_robot = await asyncio.to_thread(connect, config.robot, creds, shutdown.sleep)
        # The SDK robot is a context manager: leaving it stops its time-sync and token threads;
        # `shutdown` closes its gRPC channels.
        stack.enter_context(sdk_robot)
        stack.callback(sdk_robot.shutdown)
    robot = SpotRobot(sdk_robot, config.robot, creds=creds)
    shutdown.on_force(robot.stop_keeping_estop)
    return await _drive(config, rules, decode_min_side, robot, duration_s,
                        shutdown, on_pipeline, extras)


class _Extras:
    """Optional parts of a run, set up before the robot is touched: recording, operator control."""

    def __init__(self, config: Any, record: Path | None, stack: contextlib.ExitStack) -> None:
        self.observers: list[Any] = []
        self.control: Any = None
        self.recorder: Any = None
        if record is not None:
            from agent.recording.metadata import recording_metadata
            from agent.recording.writer import Recorder, RecordingObserver

            self.recorder = Recorder(record, limits=config.recording,
                                     metadata=recording_metadata(config, started_local=time.time()))
            stack.callback(self.recorder.close)
            self.observers.append(RecordingObserver(self.recorder))
        if config.control.enabled or config.control.live_view.enabled:  # either runs alone
            from agent.control.agent_control import ControlHost

            self.control = ControlHost(config.control)  # loads the CurveZMQ keys now


async def _drive(
    config: Any,
    rules: Any,
    decode_min_side: int | None,
    robot: Any,
    duration_s: float | None,
    shutdown: Any,
    on_pipeline: Callable[[Any], None] | None,
    extras: _Extras,
) -> AgentRunResult:
    from agent.core.assembly import build_pipeline
    from agent.spot.camera_source import SpotCameraSource

    try:
        await asyncio.to_thread(robot.start)
        shutdown.check()  # a stop asked while powering on: unwind now
    except BaseException:
        await asyncio.to_thread(robot.close)  # hand back whatever was taken (lease, E-Stop)
        raise
    try:
        source = SpotCameraSource.for_robot(robot.sdk_robot, config.cameras, decode_min_side)
        pipeline = build_pipeline(config, source, robot, rules=rules, observers=extras.observers,
                                  sdk_robot=robot.sdk_robot)
        if extras.control is not None:
            await extras.control.start(pipeline)
        if on_pipeline is not None:
            on_pipeline(pipeline)
        shutdown.on_stop(pipeline.request_stop)
        report = await pipeline.run(duration_s)  # the pipeline starts and closes the source
    finally:
        await asyncio.to_thread(robot.close)
    return AgentRunResult(report, EXIT_CODES.get(report.reason, EXIT_OK))


def run_command(
    config: str = typer.Option(
        "agent", "--config", "-c",
        help="Agent settings: a YAML file, or the name of a shipped one "
        f"({', '.join(configs.shipped_names(configs.AGENT_CONFIGS))}).",
    ),
    hostname: str | None = typer.Option(None, "--hostname", help="Robot address (overrides config)."),
    port: int | None = typer.Option(None, "--port", help="Robot TLS port (overrides config)."),
    ca: Path | None = typer.Option(None, "--ca", help="CA certificate to trust instead of the SDK's."),
    payload_credentials_file: Path | None = typer.Option(
        None,
        "--payload-credentials-file",
        help="Authenticate as a payload: file with the GUID (line 1) and secret (line 2).",
    ),
    rules: str | None = typer.Option(
        None, "--rules", help="Cue rules (overrides the config's): a YAML file, or the name of a "
        f"shipped one ({', '.join(configs.shipped_names(configs.RULES))})."
    ),
    duration: float | None = typer.Option(
        None, "--duration", min=0.1, help="Stop after this many seconds (default: until Ctrl-C)."
    ),
    record: Path | None = typer.Option(
        None, "--record", help="Record the run to this MCAP file (replay with `spot-agent replay`)."
    ),
    control_endpoint: str | None = typer.Option(
        None,
        "--control-endpoint",
        help="Serve operator control here, e.g. tcp://127.0.0.1:21000 (a network address needs "
        "--curve-keys-dir).",
    ),
    curve_keys_dir: Path | None = typer.Option(
        None, "--curve-keys-dir", help="CurveZMQ keys: server.key_secret and authorized/*.key."
    ),
    live_view_port: int | None = typer.Option(
        None, "--live-view-port", help="Serve the Foxglove live view on this port (21000-22000)."
    ),
    live_view_host: str | None = typer.Option(
        None, "--live-view-host", help="Live view address (default 127.0.0.1; view-only, no auth)."
    ),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
) -> None:
    from agent.core.logs import setup_logging

    setup_logging(log_level.upper())
    cfg = _config_from_options(config, {
        "robot.hostname": hostname,
        "robot.port": port,
        "robot.ca_cert": ca.resolve() if ca else None,
        "robot.auth.payload_credentials_file": (
            payload_credentials_file.resolve() if payload_credentials_file else None
        ),
        "rules": configs.find(rules, configs.RULES) if rules else None,
        # Operator control: giving an endpoint (or keys) turns it on.
        "control.enabled": True if control_endpoint or curve_keys_dir else None,
        "control.endpoint": control_endpoint,
        "control.curve_keys_dir": curve_keys_dir.resolve() if curve_keys_dir else None,
        "control.live_view.enabled": True if live_view_port is not None or live_view_host else None,
        "control.live_view.port": live_view_port,
        "control.live_view.host": live_view_host,
    })
    result = _run_or_exit(cfg, duration, record)
    _say_how_it_ended(result)
    raise typer.Exit(result.exit_code)


def _config_from_options(config: str, overrides: dict[str, Any]) -> Any:
    """The config file with the command line's overrides; exit 2 naming what is wrong."""
    from pydantic import ValidationError

    from agent.config import config_overrides, load_agent_config
    from configs.loading import ConfigError, format_validation_error

    try:
        return config_overrides(load_agent_config(configs.find(config)), **overrides)
    except (ConfigError, ValueError) as exc:
        # An override from the command line broke a rule: say which, without pydantic's noise.
        message = format_validation_error("options", exc) if isinstance(exc, ValidationError) else str(exc)
        _fail("bad configuration", "config_error", message, EXIT_CONFIG)


def _fail(what: str, event: str, message: str, code: int) -> NoReturn:
    log.error(what, extra={"event": event, "error": message})
    typer.echo(f"spot-agent: {message}", err=True)
    raise typer.Exit(code)


def _run_or_exit(cfg: Any, duration: float | None, record: Path | None) -> AgentRunResult:
    """Run the agent; what stops it before it runs becomes its exit code (2, 3 or 4)."""
    from agent.control.endpoints import BindError, EndpointError
    from agent.control.keys import KeyFileError
    from agent.core.seams import RobotUnavailable
    from agent.recording.writer import RecordingError
    from agent.spot.camera_source import UnknownCameraError
    from agent.spot.connect import ConnectError
    from configs.loading import ConfigError
    from perception.detector import ModelIntegrityError

    setup_errors = (ConfigError, KeyFileError, EndpointError, BindError, RecordingError,
                    UnknownCameraError, ModelIntegrityError)
    try:
        return asyncio.run(run_agent(cfg, duration, record=record))
    except setup_errors as exc:
        _fail("cannot start", "setup_error", str(exc), EXIT_CONFIG)
    except ConnectError as exc:
        _fail("cannot connect", "connect_error", str(exc), EXIT_CONNECT)
    except RobotUnavailable as exc:
        _fail("robot unavailable", "robot_unavailable", str(exc), EXIT_ROBOT_UNAVAILABLE)


def _say_how_it_ended(result: AgentRunResult) -> None:
    report = result.report
    log.info(
        "agent finished",
        extra={
            "event": "agent_finished",
            "reason": report.reason,
            "detect_fps": report.stats["detect_fps"],
            "commands_sent": report.stats["commands_sent"],
            "dropped_stale": report.stats["dropped_stale"],
        },
    )
    if result.exit_code == EXIT_LEASE_LOST:
        typer.echo(
            "spot-agent: the lease was taken by another client; the agent stopped commanding "
            "and left it to them",
            err=True,
        )
    elif result.exit_code != EXIT_OK:
        typer.echo(f"spot-agent: {report.detail or report.reason}", err=True)


# `spot-agent run --help` (rich re-wraps paragraphs only when each is one line, hence the joins).
run_command.__doc__ = "\n\n".join(
    [
        "Run the agent on a robot: stream cameras, detect, react per the cue rules.",
        "Needs an E-Stop configured and released and the lease free; the agent acquires the "
        "lease (never takes it), powers on and stands. If someone else takes the lease it stops "
        "commanding at once and exits with code 5. User and password come from "
        "BOSDYN_CLIENT_USERNAME and BOSDYN_CLIENT_PASSWORD unless --payload-credentials-file is "
        "given.",
        "Exit codes: 0 done, 1 the agent failed (camera stream broke), 2 bad config, 3 cannot "
        "reach or log in to the robot, 4 robot cannot be driven (E-Stop, lease held elsewhere, "
        "cannot stand, motors off mid-run), 5 lease taken while running, 6 the recording stopped "
        "early (disk full).",
    ]
)
