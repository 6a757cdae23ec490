"""`spot-agent replay INPUT...`: one input replays as it always did (`agent.replay.command`: the
detailed summary, `--out-mcap`, `--out-video`); many inputs (files, folders, globs), `--ray`,
`--compare-*` or `--report` replay as a fleet: one task per recording on a process pool or a
Ray cluster, and a fleet report.

Fleet exit codes: 0 every recording replayed and matched; 6 a replay differs from its live run,
or (regression mode) the two sides' commands differ on a recording; 1 a recording could not be
replayed (listed; the others are reported); 2 bad options or Ray missing; 130 Ctrl-C (the
partial report is written).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NoReturn

import typer

import configs

EXIT_CONFIG = 2  # the fleet's other exit codes: agent.fleet.replay_fleet


def replay_command(
    inputs: list[str] = typer.Argument(..., help="Recordings, videos, image folders, folders of "
                                       "recordings or globs ('fleet/**/*.mcap')."),
    config: str | None = typer.Option(
        None, "--config", "-c",
        help="Agent settings instead of the ones recorded in the file: a YAML file, or the name "
        f"of a shipped one ({', '.join(configs.shipped_names(configs.AGENT_CONFIGS))}). Default: "
        "the recorded configuration; for videos, folders and old recordings, the shipped agent.",
    ),
    rules: str | None = typer.Option(
        None, "--rules", help="Cue rules instead of the recorded (or the config's): a YAML file, "
        f"or the name of a shipped one ({', '.join(configs.shipped_names(configs.RULES))})."
    ),
    fast: bool = typer.Option(False, "--fast", help="As fast as the detector allows (the default)."),
    speed: float | None = typer.Option(
        None, "--speed", min=0.01, help="Play at this multiple of real time (1 = as recorded; one input)."
    ),
    mode: str = typer.Option(
        "auto", "--mode",
        help="recorded-run: reproduce a live run's commands (recordings of `run --record`); "
        "frames: every frame in order, ticks on frame time; auto: recorded-run when possible.",
    ),
    fps: float | None = typer.Option(None, "--fps", help="Frame rate of an image folder (default 10) or a video."),
    out_mcap: Path | None = typer.Option(None, "--out-mcap", help="Record the replay (one input)."),
    out_video: Path | None = typer.Option(None, "--out-video", help="Write the frames with their boxes to a video (one input)."),
    workers: int = typer.Option(0, "--workers", "-j", min=0, help="Worker processes for many inputs "
                                "(default: one per core; 1: one after the other in this process)."),
    ray: str | None = typer.Option(None, "--ray", help="Run on a Ray cluster: auto (the one `ray start` "
                                   "runs here), ray://HEAD:10001, or local. Needs the cluster extra."),
    compare_config: str | None = typer.Option(None, "--compare-config", help="Regression: replay "
                                              "everything again with this config (side B)."),
    compare_rules: str | None = typer.Option(None, "--compare-rules", help="Regression: side B's rules."),
    report: Path | None = typer.Option(None, "--report", help="Folder for the fleet report "
                                       "(report.json, summary.txt)."),
    log_level: str = typer.Option("warning", "--log-level", help="debug, info, warning or error."),
) -> None:
    """Replay what robots saw through the pipeline with a dry-run robot, and summarise.

    One input: the detailed replay summary. Many inputs (or --ray, --compare-*, --report): one
    task per recording in parallel and a fleet report (per recording: commands vs the live
    run, rules fired, perception counts; with --compare-*: the recordings whose commands change).
    """
    from agent.fleet.inputs import expand_inputs

    paths = expand_inputs(inputs)
    fleet = len(paths) > 1 or any(o is not None for o in (ray, compare_config, compare_rules, report))
    if not fleet:
        from agent.replay.command import replay_one

        replay_one(path=paths[0], config=config, rules=rules, fast=fast, speed=speed, mode=mode, fps=fps,
                   out_mcap=out_mcap, out_video=out_video, log_level=log_level)
        return
    if out_mcap is not None or out_video is not None or speed is not None:
        _fail("--out-mcap, --out-video and --speed replay one input; with many, use --report", EXIT_CONFIG)
    if mode not in ("auto", "recorded-run", "frames"):
        _fail(f"--mode must be auto, recorded-run or frames, not {mode}", EXIT_CONFIG)
    from agent.fleet.replay_fleet import FleetOptions, replay_fleet

    options = FleetOptions(paths, _user_file(config), _user_file(rules), mode, fps,
                           _user_file(compare_config), _user_file(compare_rules),
                           workers or os.cpu_count() or 1, ray, report,
                           getattr(logging, log_level.upper(), logging.WARNING))
    raise typer.Exit(replay_fleet(options))


def _user_file(arg: str | None) -> str | None:
    """A config or rules argument that names a file, made absolute (workers may not share this
    folder); a shipped name stays a name."""
    if arg is not None and Path(arg).is_file():
        return str(Path(arg).resolve())
    return arg


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"spot-agent replay: {message}", err=True)
    raise typer.Exit(code)
