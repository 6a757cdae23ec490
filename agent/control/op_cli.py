"""`spot-agent op ...` (the operator's laptop) and `spot-agent keys` (either side).

Exit codes: 0 done, 1 the agent refused the request, 2 bad usage or key files, 3 no answer
from the agent.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from agent.control.endpoints import DEFAULT_CONTROL_ENDPOINT
from agent.control.op_params import format_params, parse_params
from agent.control.op_view import format_event, format_status

if TYPE_CHECKING:
    from agent.control.client import ControlClient

EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

op_app = typer.Typer(
    help="Control a running agent from this machine: launch and stop behaviors, watch events.",
    no_args_is_help=True,
    add_completion=False,
)


@dataclass(frozen=True)
class _Options:
    endpoint: str
    server_key: Path | None
    client_key: Path | None
    timeout_s: float


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[red]{message}[/red]")
    raise typer.Exit(code)


@op_app.callback()
def op_main(
    ctx: typer.Context,
    endpoint: str = typer.Option(
        DEFAULT_CONTROL_ENDPOINT,
        "--endpoint",
        "-e",
        envvar="SPOT_AGENT_ENDPOINT",
        help="The agent's control socket, e.g. tcp://192.168.50.5:21000.",
    ),
    server_key: Path | None = typer.Option(
        None,
        "--server-key",
        envvar="SPOT_AGENT_SERVER_KEY",
        help="The agent's public key (server.key). Needed for an agent on another machine.",
    ),
    client_key: Path | None = typer.Option(
        None,
        "--client-key",
        envvar="SPOT_AGENT_CLIENT_KEY",
        help="Your secret key (NAME.key_secret from `spot-agent keys`).",
    ),
    timeout: float = typer.Option(3.0, "--timeout", min=0.1, help="Seconds to wait for an answer."),
) -> None:
    ctx.obj = _Options(endpoint, server_key, client_key, timeout)


def _connect(ctx: typer.Context) -> ControlClient:
    from agent.control.client import ControlClient
    from agent.control.endpoints import EndpointError
    from agent.control.keys import KeyFileError, load_client_keys

    opts: _Options = ctx.obj
    if (opts.server_key is None) != (opts.client_key is None):
        _fail("Give both --server-key and --client-key (or neither, for a local agent).", EXIT_USAGE)
    keys = None
    if opts.server_key is not None and opts.client_key is not None:
        try:
            keys = load_client_keys(opts.server_key, opts.client_key)
        except KeyFileError as exc:
            _fail(f"Cannot use the keys: {exc}", EXIT_USAGE)
    try:
        return ControlClient(opts.endpoint, keys=keys, timeout_s=opts.timeout_s)
    except EndpointError as exc:
        _fail(f"Bad --endpoint: {exc}", EXIT_USAGE)


def _call(ctx: typer.Context, cmd: str, args: dict[str, Any] | None = None) -> Any:
    """One request; a person-readable message and an exit code for anything that goes wrong."""
    from agent.control.client import AgentError, AgentUnreachable

    client = _connect(ctx)
    try:
        return client.call(cmd, args)
    except AgentUnreachable as exc:
        _fail(str(exc), EXIT_UNREACHABLE)
    except AgentError as exc:
        _fail(f"The agent refused {cmd.replace('_', '-')}: {exc.message}", EXIT_REFUSED)
    finally:
        client.close()


# --- commands ------------------------------------------------------------------------------


@op_app.command("status")
def status_command(ctx: typer.Context) -> None:
    """What the agent is doing: behavior, cues, robot state, cameras."""
    status = _call(ctx, "status").value
    for line in format_status(status, ctx.obj.endpoint):
        out.print(line)


@op_app.command("behaviors")
def behaviors_command(ctx: typer.Context) -> None:
    """The behaviors you can launch, with their parameters."""
    from rich.markup import escape
    from rich.table import Table

    catalog = _call(ctx, "behaviors").value
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("behavior")
    table.add_column("parameters")
    table.add_column("what it does")
    for entry in catalog:
        table.add_row(
            escape(str(entry.get("name", "?"))),
            escape(format_params(entry.get("params"))),
            escape(str(entry.get("description", ""))),
        )
    out.print(table)


@op_app.command("launch")
def launch_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Behavior name (see `spot-agent op behaviors`)."),
    params: list[str] | None = typer.Argument(
        None, help="Parameters as key=value (numbers, true/false, null, or JSON like [1,2])."
    ),
) -> None:
    """Start a behavior. It pre-empts cue behaviors until it finishes or you `stop`."""
    try:
        parsed = parse_params(params or [])
    except ValueError as exc:
        _fail(str(exc), EXIT_USAGE)
    result = _call(ctx, "launch", {"name": name, "params": parsed}).value
    shown = " ".join(f"{k}={v}" for k, v in parsed.items())
    out.print(f"Launched [bold]{name}[/bold]{' ' + shown if shown else ''}.")
    note = result.get("message") if isinstance(result, dict) else None
    if note:
        out.print(note)
    out.print("It pre-empts cue behaviors until it finishes; `spot-agent op stop` ends it now.")


@op_app.command("stop")
def stop_command(
    ctx: typer.Context,
    reason: str = typer.Option("operator stop", "--reason", help="Recorded in events and logs."),
) -> None:
    """Stop motion now and end the running behavior."""
    result = _call(ctx, "stop", {"reason": reason}).value
    result = result if isinstance(result, dict) else {}
    ended = f" Ended {result['ended']}." if result.get("ended") else ""
    if result.get("message"):  # behaviors stopped, but the robot did not take the command
        err.print(f"[yellow]{escape(result['message'])}[/yellow]{ended}")
        return
    out.print("Stopped: the stop command was sent to the robot." + ended)


@op_app.command("pause-cues")
def pause_cues_command(ctx: typer.Context) -> None:
    """Stop reacting to cues (operator launches still work)."""
    _call(ctx, "pause_cues")
    out.print("Cues paused: the agent no longer reacts to what it sees. `resume-cues` turns them back on.")


@op_app.command("resume-cues")
def resume_cues_command(ctx: typer.Context) -> None:
    """React to cues again."""
    _call(ctx, "resume_cues")
    out.print("Cues resumed: the agent reacts to what it sees again.")


@op_app.command("snapshot")
def snapshot_command(
    ctx: typer.Context,
    camera: str = typer.Argument(..., help="Camera name, e.g. frontleft_fisheye_image."),
    output: Path | None = typer.Option(None, "--output", "-o", help="JPEG file to write."),
    boxes: bool = typer.Option(True, "--boxes/--no-boxes", help="Draw the latest detections."),
) -> None:
    """Save a camera's latest frame, with detections drawn, as JPEG."""
    result = _call(ctx, "snapshot", {"camera": camera, "draw_detections": boxes})
    if not result.attachment:
        _fail("The agent's reply carried no image.", EXIT_REFUSED)
    path = output or Path(f"{camera}-{time.strftime('%Y%m%d-%H%M%S')}.jpg")
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_bytes(result.attachment)
        os.replace(partial, path)
    except OSError as exc:
        _fail(f"Cannot write {path}: {exc.strerror or exc}", EXIT_USAGE)
    meta = result.value or {}
    found = meta.get("detections") or []
    seen = ", ".join(f"{d['label']} {d['score']:.2f}" for d in found[:6]) or "nothing detected"
    age = time.time() - float(meta.get("time", time.time()))
    out.print(
        f"Saved {camera} ({meta.get('width')}x{meta.get('height')}, {age:.1f} s old; {seen}) "
        f"to {path}"
    )


@op_app.command("watch")
def watch_command(
    ctx: typer.Context,
    topics: list[str] | None = typer.Option(
        None, "--topic", "-t", help="Only these topics (detection, cue, behavior, command, health, operator)."
    ),
    count: int | None = typer.Option(None, "--count", "-n", min=1, help="Stop after N events."),
    duration: float | None = typer.Option(None, "--duration", "-d", min=0.1, help="Stop after S seconds."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line instead of text."),
) -> None:
    """Follow what the agent sees and does, live (Ctrl-C to end)."""
    import json

    from agent.control.client import AgentError, AgentUnreachable
    from agent.control.protocol import EVENT_TOPICS

    for topic in topics or []:
        if topic not in EVENT_TOPICS:
            _fail(f"Unknown topic {topic!r}; topics are: {', '.join(EVENT_TOPICS)}", EXIT_USAGE)
    client = _connect(ctx)
    shown = 0
    try:
        if not as_json:
            err.print(f"Watching {client.endpoint} (Ctrl-C to end)...")
        for event in client.events(topics, duration_s=duration, count=count):
            if event is None:
                continue
            shown += 1
            if as_json:
                print(json.dumps({"topic": event.topic, "time": event.time, "seq": event.seq, "data": event.data}), flush=True)
            else:
                out.print(format_event(event))
    except AgentUnreachable as exc:
        _fail(str(exc), EXIT_UNREACHABLE)
    except AgentError as exc:
        _fail(f"The agent refused to stream events: {exc.message}", EXIT_REFUSED)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    if not as_json:
        err.print(f"{shown} event(s).")


def keys_command(
    directory: Path = typer.Option(Path("."), "--dir", help="Where to write the key files."),
    name: str = typer.Option(
        "operator", "--name", help="Key name: `server` for the agent, your name for an operator."
    ),
) -> None:
    """Make a CurveZMQ key pair (NAME.key public, NAME.key_secret secret)."""
    from agent.control.keys import AUTHORIZED_DIR, SERVER_KEY_NAME, KeyFileError, create_key_pair

    try:
        public, secret = create_key_pair(directory, name)
    except KeyFileError as exc:
        _fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        _fail(f"Cannot write keys in {directory}: {exc.strerror or exc}", EXIT_USAGE)
    out.print(f"Wrote {public} (public) and {secret} (secret: keep it private).")
    if name == SERVER_KEY_NAME:
        out.print(
            f"Agent: run with --curve-keys-dir {directory}; put each operator's NAME.key in "
            f"{directory / AUTHORIZED_DIR}/. Give {public.name} to the operators."
        )
    else:
        out.print(
            f"Operator: copy {public.name} into the agent's keys directory under {AUTHORIZED_DIR}/, "
            f"then use `spot-agent op --server-key server.key --client-key {secret} ...`."
        )
