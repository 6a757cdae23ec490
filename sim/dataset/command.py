"""`spot-agent sim dataset`: labelled synthetic frames from the sim."""

from __future__ import annotations

from pathlib import Path

import typer

import configs

CAMERA_NAMES = (
    "frontleft_fisheye_image", "frontright_fisheye_image", "left_fisheye_image", "right_fisheye_image",
    "back_fisheye_image",
)  # fmt: skip


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def dataset_command(
    out: Path = typer.Option(..., "--out", help="Folder for images/ and labels.json (created)."),
    scenario: list[str] = typer.Option(
        ["default"], "--scenario", help="Base world(s), repeatable: a scenario YAML file or a shipped name "
        f"({', '.join(configs.shipped_names(configs.SCENARIOS))}). Frames take them in turn.",
    ),
    frames: int = typer.Option(200, "--frames", min=1, max=1_000_000, help="How many frames."),
    seed: int = typer.Option(0, "--seed", min=0, help="Same seed, same frames."),
    cameras: list[str] = typer.Option(
        list(CAMERA_NAMES), "--cameras", help="Body cameras to render, taken in turn (repeat or comma-separate)."
    ),
    appearances: list[str] = typer.Option(
        [], "--appearances", help="Person appearances to draw from (default: all; 'astronaut' for the photo alone)."
    ),
    plain: bool = typer.Option(
        False, "--plain", help="No clutter, walls, floor/backdrop changes or dim frames: the scenario's own look."
    ),
) -> None:
    """Render labelled frames (upright grey JPEGs + COCO labels.json) from randomised sim scenes.

    Robot poses put a person or stop sign 1-10 m in front of the camera; people, clutter, floors
    and lighting vary; boxes come from the scene geometry, in the upright image the detector sees.
    """
    from perception.config import DetectorConfig
    from sim.cameras import CAMERAS
    from sim.dataset.coco import DatasetRequest, write_dataset
    from sim.dataset.variations import VariationOptions
    from sim.scene import PERSON_APPEARANCES, ScenarioError, find_scenario, load_scenario

    names = _split(cameras)
    wanted = _split(appearances) or list(PERSON_APPEARANCES)
    bad = [n for n in names if n not in CAMERAS] + [a for a in wanted if a not in PERSON_APPEARANCES]
    if bad:
        typer.echo(f"error: unknown camera or appearance: {', '.join(bad)} (cameras: {', '.join(CAMERAS)}; "
                   f"appearances: {', '.join(PERSON_APPEARANCES)})", err=True)  # fmt: skip
        raise typer.Exit(2)
    try:
        scenarios = [load_scenario(find_scenario(s)) for s in scenario]
    except ScenarioError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    options = VariationOptions(appearances=tuple(wanted), clutter=not plain, dim_fraction=0.0 if plain else 0.35)
    request = DatasetRequest(
        scenarios=scenarios, cameras=[CAMERAS[n] for n in names], frames=frames, seed=seed,
        rotation_for=DetectorConfig().rotation_for, options=options,
    )  # fmt: skip
    try:
        coco = write_dataset(request, out)
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    counted = sum(1 for a in coco["annotations"] if not a["iscrowd"])
    typer.echo(f"wrote {frames} frames, {counted} labelled objects (+ {len(coco['annotations']) - counted} ignore "
               f"regions) to {out / 'labels.json'}")  # fmt: skip
