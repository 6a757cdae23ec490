"""`spot-agent eval --ray`: the same perception report on a local Ray cluster as in this
process (chunks of images as Ray tasks, results keyed by image), and --ray without Ray says
how to install it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from support.cli import command_app
from support.devset import DEVSET_DIR, LABELS
from typer.testing import CliRunner

from agent.eval.command import eval_command

pytestmark = pytest.mark.slow


def _eval(*args: str) -> Any:
    return CliRunner().invoke(command_app("eval", eval_command), ["eval", *args], terminal_width=250)


@pytest.fixture(scope="module")
def labels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 dev-set frames (real grey robot frames, hand-checked boxes): two Ray tasks of images."""
    data = json.loads(LABELS.read_text())
    keep = {im["id"] for im in data["images"][:20]}
    data["images"] = [im for im in data["images"] if im["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    path = tmp_path_factory.mktemp("labels") / "subset.json"
    path.write_text(json.dumps(data))
    return path


def _numbers(out: Path) -> dict[str, Any]:
    report = json.loads((out / "report.json").read_text())
    for run in report["runs"]:
        run.pop("seconds"), run.pop("workers")
    return report


def test_eval_on_a_local_ray_cluster_gives_the_in_process_numbers(labels: Path, tmp_path: Path) -> None:
    here = _eval(str(labels), "--images", str(DEVSET_DIR), "--out", str(tmp_path / "one"), "--workers", "1")
    assert here.exit_code == 0, here.output
    on_ray = _eval(str(labels), "--images", str(DEVSET_DIR), "--out", str(tmp_path / "ray"), "--ray", "local")
    assert on_ray.exit_code == 0, on_ray.output
    assert _numbers(tmp_path / "ray") == _numbers(tmp_path / "one")
    assert _numbers(tmp_path / "one")["runs"][0]["classes"]["person"]["at_threshold"]["hits"] > 0


def test_eval_ray_without_ray_says_how_to_install_it(
        labels: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    result = _eval(str(labels), "--images", str(DEVSET_DIR), "--out", str(tmp_path / "x"), "--ray", "auto")
    assert result.exit_code == 2
    assert "pip install 'spot-cue-agent[cluster]'" in result.output.replace("\n", " ")
    assert not (tmp_path / "x").exists()
