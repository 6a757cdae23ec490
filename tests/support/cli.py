"""A spot-agent command as the CLI registers it, for CliRunner tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer


def command_app(name: str, command: Callable[..., Any]) -> typer.Typer:
    """A typer app holding `command` as `name`, invoked as `[name, *args]` like spot-agent's."""
    app = typer.Typer()
    app.command(name)(command)
    app.command("noop")(lambda: None)  # two commands: typer then routes by name as spot-agent does
    return app
