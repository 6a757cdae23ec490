"""Shared pieces of the `spot-agent eval` tests: the command as the CLI registers it, and a
small labelled set cut from the real dev set (real grey frames, hand-checked boxes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from support.cli import command_app
from support.devset import DEVSET_DIR, LABELS

from agent.eval.command import eval_command


@pytest.fixture(scope="session")
def eval_app() -> typer.Typer:
    app = command_app("eval", eval_command)
    return app


def devset_subset(folder: Path, count: int) -> Path:
    """The first `count` dev-set images with people plus two without, as a COCO file in
    `folder` whose images stay in the dev set (passed with --images)."""
    data = json.loads(LABELS.read_text())
    with_people = sorted({a["image_id"] for a in data["annotations"]})[:count]
    without = [im["id"] for im in data["images"] if im["id"] not in {a["image_id"] for a in data["annotations"]}][:2]
    keep = set(with_people) | set(without)
    data["images"] = [im for im in data["images"] if im["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "subset.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="session")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return devset_subset(tmp_path_factory.mktemp("subset"), 10)


@pytest.fixture(scope="session")
def devset_dir() -> Path:
    return DEVSET_DIR
