"""`spot-agent export-frames`: the command line of the export (options, summary, exit codes).

What an export does is `agent.replay.export_frames`; this module turns options into a call and
the result into a table. Heavy imports happen when the command runs.

Exit codes: 0 something was exported (inputs that could not be read are listed), 2 nothing was
exported (nothing readable, a bad configuration, or `--out` in the way).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer

EXIT_OK = 0
EXIT_NOTHING = 2


def export_frames_command(
    paths: list[Path] = typer.Argument(
        ..., help="MCAP recordings (segments, damaged ones too), videos or folders of images."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to create: the JPEGs and labels.json."),
    every: float = typer.Option(
        1.0, "--every", min=0.0, help="Seconds of recording time between exported frames of a "
        "camera (0: every frame)."
    ),
    config: str | None = typer.Option(
        None, "--config", "-c", help="Agent settings whose detector makes the pre-labels (a YAML "
        "file or a shipped name). Default: a recording's own, else the shipped agent config."
    ),
    cameras: str | None = typer.Option(
        None, "--cameras", help="Export only these cameras, comma-separated (default: all)."
    ),
    camera: str | None = typer.Option(
        None, "--camera", help="The Spot camera a video or image folder comes from (turns it upright "
        "as that camera); default: a camera named in the file names, else none (already upright)."
    ),
    fps: float | None = typer.Option(None, "--fps", min=0.01, help="Frame rate of an image folder (default 10)."),
) -> None:
    """Export upright frames with the agent's detections as COCO pre-labels, for labelling.

    Writes OUT/<camera>_<seq>.jpg and OUT/labels.json (COCO: boxes, scores, person keypoints,
    AprilTags as tag:<id>). Import into CVAT or Label Studio as COCO 1.0. Exit codes: 0 frames
    were exported (unreadable inputs are listed), 2 nothing was exported.
    """
    from rich.console import Console

    from agent.replay.export_frames import ExportOptions, export_frames

    if config is not None:
        _check_config(config)
    options = ExportOptions(
        every_s=every, config=config, camera=camera, fps=fps,
        cameras=frozenset(c.strip() for c in cameras.split(",") if c.strip()) if cameras else None,
    )
    try:
        result = asyncio.run(export_frames(paths, out, options))
    except OSError as exc:  # --out in the way (FileExistsError), or the disk
        typer.echo(f"spot-agent export-frames: {exc}", err=True)
        raise typer.Exit(EXIT_NOTHING) from None
    _render(result, Console())
    raise typer.Exit(EXIT_OK if result.exported else EXIT_NOTHING)


def _check_config(config: str) -> None:
    """A bad --config is one clear line before anything is read."""
    import configs
    from agent.config import load_agent_config
    from configs.loading import ConfigError

    try:
        load_agent_config(configs.find(config))
    except (ConfigError, ValueError) as exc:
        typer.echo(f"spot-agent export-frames: {exc}", err=True)
        raise typer.Exit(EXIT_NOTHING) from None


def _render(result: Any, console: Any, shown: int = 5) -> None:
    """The table of inputs, then what each lost (the first `shown` problems) or why it was skipped."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="export-frames")
    for column in ("input", "kind", "frames read", "exported", "boxes", "problems"):
        table.add_column(column, justify="left" if column in ("input", "kind") else "right")
    for one in result.inputs:
        problems = "[red]skipped[/red]" if one.error else str(len(one.problems) or "")
        table.add_row(escape(one.source), one.kind or "-", str(one.frames_read), str(one.exported),
                      str(one.boxes), problems)
    console.print(table)
    for one in result.inputs:
        if one.error:
            console.print(f"[red]{escape(one.source)}: skipped:[/red] {escape(one.error)}", soft_wrap=True)
            continue
        for problem in one.problems[:shown]:
            console.print(f"[yellow]{escape(one.source)}:[/yellow] {escape(problem)}", soft_wrap=True)
        if len(one.problems) > shown:
            console.print(f"[yellow]{escape(one.source)}:[/yellow] and {len(one.problems) - shown} more")
    rate = result.exported / result.seconds if result.seconds > 0 else 0.0
    if result.exported:
        console.print(f"{result.exported} frames, {result.boxes} boxes -> {escape(str(result.out))}/ "
                      f"(labels.json: COCO; {rate:.1f} frames/s)", soft_wrap=True)
    else:
        console.print("[red]nothing exported[/red]: no input had a readable frame to export")
