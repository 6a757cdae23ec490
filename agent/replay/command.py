"""`spot-agent replay PATH` for one input: options to a call, errors to messages and exit codes.

The command line (`agent.fleet.command.replay_command`, with the options and their help) hands
one input to `replay_one`. What a replay does is `agent.replay.runner.replay`; this module only
turns options into a call, errors into one clear line and an exit code, and the result into the
summary. It imports the heavy parts when the command runs, so the CLI starts fast.

A recording replays with the configuration embedded in it (`agent.replay.config`); `--config`
and `--rules` override it, and the summary says so.

Exit codes: 0 replayed (what was lost from the input is reported), 1 nothing was readable, 2 a bad
or missing configuration (or a model other than the recorded one), 6 the replayed commands
differ from the live run's (the first difference is printed).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import NoReturn

import typer

EXIT_OK = 0
EXIT_NOTHING_READABLE = 1
EXIT_CONFIG = 2
EXIT_COMMANDS_DIFFER = 6  # distinct from `run`'s 3-5, so scripts can tell a mismatch from a failure


def replay_one(
    path: Path,
    config: str | None = None,
    rules: str | None = None,
    fast: bool = False,
    speed: float | None = None,
    mode: str = "auto",
    fps: float | None = None,
    out_mcap: Path | None = None,
    out_video: Path | None = None,
    log_level: str = "warning",
) -> None:
    """Replay what a robot saw through the pipeline with a dry-run robot, and summarise.

    A recording replays with the configuration and rules recorded in it; --config / --rules
    replace them (the summary says so). Exit codes: 0 replayed (input losses are listed),
    1 nothing readable, 2 bad configuration or a model other than the recorded one,
    6 the replayed commands differ from the live run's (the first difference is printed).
    """
    from rich.console import Console

    from agent.core.logs import setup_logging
    from agent.recording.metadata import recording_header
    from agent.recording.writer import RecordingError
    from agent.replay.config import load_replay_rules, resolve_replay_config
    from agent.replay.reading import ReplayInputError
    from agent.replay.runner import replay
    from agent.replay.summary import render_summary
    from configs.loading import ConfigError

    setup_logging(log_level.upper())
    if fast and speed is not None:
        _fail("--fast and --speed are exclusive", EXIT_CONFIG)
    if mode not in ("auto", "recorded-run", "frames"):
        _fail(f"--mode must be auto, recorded-run or frames, not {mode}", EXIT_CONFIG)
    try:
        header = recording_header(path)
        chosen = resolve_replay_config(path.name, header, config, rules)
    except ReplayInputError as exc:
        _fail(str(exc), EXIT_NOTHING_READABLE)
    except (ConfigError, ValueError) as exc:
        _fail(str(exc), EXIT_CONFIG)
    try:
        for warning in chosen.warnings:  # before the replay starts, and again in the summary
            typer.secho(f"spot-agent replay: WARNING: {warning}", err=True, fg="red", bold=True)
        result = asyncio.run(replay(
            path, chosen.config, mode=mode, speed=speed, fps=fps, out_mcap=out_mcap,  # type: ignore[arg-type]
            out_video=out_video, rules=load_replay_rules(chosen, path.name)))
    except ReplayInputError as exc:
        _fail(str(exc), EXIT_NOTHING_READABLE)
    except (ConfigError, RecordingError, OSError) as exc:
        _fail(str(exc), EXIT_CONFIG)
    finally:
        chosen.close()
    result.config_origin, result.config_warnings = chosen.origin, chosen.warnings
    render_summary(result, Console())
    if result.comparison is not None and not result.comparison.matches:
        _fail("the replayed commands differ from the live run's: "
              f"{result.comparison.first_difference}", EXIT_COMMANDS_DIFFER)
    raise typer.Exit(EXIT_OK)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"spot-agent replay: {message}", err=True)
    raise typer.Exit(code)
