"""`spot-agent sim`: run the simulated Spot until Ctrl-C; `spot-agent sim dataset`: labelled frames;
`spot-agent sim approve-payload GUID`: authorize a payload in a sim started with `--payload-approval manual`."""

from __future__ import annotations

import enum
import shlex
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

import configs
from sim.dataset.command import dataset_command

if TYPE_CHECKING:
    from sim.server import SimServer

class PayloadApprovalMode(str, enum.Enum):
    automatic = "automatic"
    manual = "manual"


sim_app = typer.Typer(help="Run the simulated Spot robot (TLS gRPC, Spot's protocol).", add_completion=False)


@sim_app.callback(invoke_without_command=True)
def sim_command(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(44443, "--port", help="TLS port (a real robot uses 443; 0 picks a free port)."),
    ca_out: Path | None = typer.Option(
        None, "--ca-out", help="Also write the sim's CA certificate (PEM) here, for clients to trust."
    ),
    scenario: str | None = typer.Option(
        None, "--scenario", help="Sim world: a scenario YAML file, or the name of a shipped one "
        f"({', '.join(configs.shipped_names(configs.SCENARIOS))}). Default: default.",
    ),
    camera_rate: float = typer.Option(15.0, "--camera-rate", min=0.1, max=120.0, help="Frames per second per camera."),
    user: str = typer.Option("spot", "--user", help="Login user name."),
    password: str = typer.Option("spot", "--password", help="Login password."),
    clock_offset: float = typer.Option(
        1.5, "--clock-offset", help="Seconds the robot clock runs ahead of this host's (clients must time-sync)."
    ),
    lease_timeout: float = typer.Option(
        10.0, "--lease-timeout", min=0.5, help="Seconds without a lease retain/use before comms loss (sit, power off)."
    ),
    payload_approval: PayloadApprovalMode = typer.Option(
        PayloadApprovalMode.automatic, "--payload-approval",
        help="New payload registrations: authorized at once (automatic), or only after "
        "`spot-agent sim approve-payload GUID` (manual, as a robot's admin console does).",
    ),
) -> None:
    """Run the simulated Spot robot: Spot's gRPC services over TLS, a small world, rendered cameras."""
    if ctx.invoked_subcommand is not None:
        return  # `sim dataset`: no server
    import logging

    from sim.certs import export_ca
    from sim.scene import ScenarioError, find_scenario
    from sim.sdk_shim import write_shim
    from sim.server import SimServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        scenario_path = find_scenario(scenario or "default")
        sim = SimServer.start(
            scenario_path,
            host=host,
            port=port,
            camera_rate_hz=camera_rate,
            user=user,
            password=password,
            clock_offset_s=clock_offset,
            lease_timeout_s=lease_timeout,
            payload_approval=payload_approval.value,
        )
    except ScenarioError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc

    ca_path = sim.ca_path if ca_out is None else export_ca(sim.certificates, ca_out)
    typer.echo(_banner(sim, scenario_path, ca_path, write_shim(), host, user, password, clock_offset))
    poll = None
    if payload_approval == PayloadApprovalMode.manual:
        from sim.payload_approval import ApprovalInbox, approval_dir

        inbox = ApprovalInbox(approval_dir(sim.port))
        typer.echo(f"Payload approval is manual: spot-agent sim approve-payload GUID --port {sim.port}")
        poll = lambda: inbox.poll(sim.approve_payload)  # noqa: E731
    try:
        _wait_for_ctrl_c(poll)
    finally:
        typer.echo("stopping the sim")
        sim.stop()


sim_app.command("dataset")(dataset_command)


@sim_app.command("approve-payload")
def approve_payload_command(
    guid: str = typer.Argument(..., help="GUID of the registered payload to authorize."),
    port: int = typer.Option(44443, "--port", help="Port of the running sim (started with --payload-approval manual)."),
) -> None:
    """Authorize a registered payload in a running sim, as a robot's admin does in its admin console."""
    from sim.payload_approval import APPROVED, approval_dir, request_approval

    try:
        answer = request_approval(approval_dir(port), guid)
    except TimeoutError as exc:
        typer.echo(f"error: no sim with --payload-approval manual answered on port {port} ({exc})", err=True)
        raise typer.Exit(1) from exc
    if answer != APPROVED:
        typer.echo(f"error: the sim on port {port} has no payload with GUID {guid} (register it first)", err=True)
        raise typer.Exit(2)
    typer.echo(f"payload {guid} authorized")


def _banner(
    sim: SimServer, scenario_path: Path, ca_path: Path, shim_dir: Path, host: str, user: str, password: str,
    clock_offset: float,
) -> str:
    """How to reach the running sim: address, credentials, and how to point the SDK at it."""
    from sim.sdk_shim import CA_ENV, PORT_ENV
    from sim.server import DEFAULT_PAYLOAD_GUID, DEFAULT_PAYLOAD_SECRET

    connect_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    q = shlex.quote
    lines = [
        f"Simulated Spot running: {configs.display(scenario_path)}"
        + (f": {sim.scenario.description}" if sim.scenario.description else ""),
        f"  address      {sim.host}:{sim.port} (TLS, one port for every service)",
        f"  CA cert      {ca_path}",
        f"  login        user {user!r}, password {password!r}",
        f"  payload      GUID {DEFAULT_PAYLOAD_GUID}, secret {DEFAULT_PAYLOAD_SECRET}",
        f"  robot clock  host clock {clock_offset:+.3f} s (use time sync)",
        "",
        "Python (bosdyn-client):",
        f"  sdk = bosdyn.client.create_standard_sdk('me', cert_resource_glob={str(ca_path)!r})",
        f"  robot = sdk.create_robot({connect_host!r}); robot.update_secure_channel_port({sim.port})",
        f"  robot.authenticate({user!r}, {password!r}); robot.time_sync.wait_for_sync()",
        "",
        "Stock SDK examples, unmodified (hello_spot.py, get_image.py, ...):",
        f"  PYTHONPATH={q(str(shim_dir))} {CA_ENV}={q(str(ca_path))} {PORT_ENV}={sim.port} \\",
        f"  BOSDYN_CLIENT_USERNAME={q(user)} BOSDYN_CLIENT_PASSWORD={q(password)} python hello_spot.py {connect_host}",
        "",
        "Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def _wait_for_ctrl_c(poll: Callable[[], object] | None = None) -> None:
    """Block until SIGINT/SIGTERM, calling `poll` every half second meanwhile."""
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stop.wait(0.5):
        if poll is not None:
            poll()
