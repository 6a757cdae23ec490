"""The dataset contract the frame exporter and the sim set write: `camera` and `upright` decide
how the agent's perception sees an image; grey sets load grey."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import typer
from typer.testing import CliRunner

from agent.eval.inference import load_image


def _person_numbers(app: typer.Typer, labels: Path, out: Path) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["eval", str(labels), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    person: dict[str, Any] = json.loads((out / "report.json").read_text())["runs"][0]["classes"]["person"]
    return {"coco": person["coco"], "at": person["at_threshold"]}


def test_upright_false_turns_the_image_as_the_agent_turns_that_camera(
    eval_app: typer.Typer, subset: Path, devset_dir: Path, tmp_path: Path
) -> None:
    """The right camera's frames arrive upside down (the agent turns them 180 deg): the dev-set
    frames stored that way with `upright: false` score as the upright frames."""
    data = json.loads(subset.read_text())
    (tmp_path / "flipped").mkdir()
    upright, flipped = json.loads(json.dumps(data)), json.loads(json.dumps(data))
    for im_u, im_f in zip(upright["images"], flipped["images"]):
        source = devset_dir / im_u["file_name"]
        im_u["file_name"] = str(source)
        im_u["camera"] = im_f["camera"] = "right_fisheye_image"
        im_f["file_name"] = f"flipped/{source.stem}.png"  # lossless: the same pixels, turned
        im_f["upright"] = False
        cv2.imwrite(str(tmp_path / im_f["file_name"]), cv2.rotate(cv2.imread(str(source)), cv2.ROTATE_180))
    for a in flipped["annotations"]:
        im = next(i for i in flipped["images"] if i["id"] == a["image_id"])
        x, y, w, h = a["bbox"]
        a["bbox"] = [im["width"] - x - w, im["height"] - y - h, w, h]
    for name, labels in (("upright", upright), ("flipped", flipped)):
        (tmp_path / f"{name}.json").write_text(json.dumps(labels))
    as_camera = _person_numbers(eval_app, tmp_path / "upright.json", tmp_path / "a")
    turned = _person_numbers(eval_app, tmp_path / "flipped.json", tmp_path / "b")
    # Not bit-identical: the perceiver folds the turn into its one resize warp, so the model
    # sees resampled pixels (scores move by ~0.01); the same people are found.
    assert as_camera["at"]["hits"] > 0 and abs(turned["at"]["hits"] - as_camera["at"]["hits"]) <= 1
    assert turned["at"]["false_positives"] <= as_camera["at"]["false_positives"] + 1
    assert abs(turned["coco"]["AP50"] - as_camera["coco"]["AP50"]) < 0.03
    # Marked upright, the same upside-down frames are run as they are: other (worse) numbers.
    for im in flipped["images"]:
        im["upright"] = True
    (tmp_path / "flipped.json").write_text(json.dumps(flipped))
    as_stored = _person_numbers(eval_app, tmp_path / "flipped.json", tmp_path / "c")
    assert as_stored["at"]["hits"] < as_camera["at"]["hits"] - 3


def test_images_load_grey_when_grey_else_as_stored(tmp_path: Path) -> None:
    grey = np.tile(np.arange(64, dtype=np.uint8), (48, 1))
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    cv2.imwrite(str(tmp_path / "grey_as_bgr.jpg"), cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), [cv2.IMWRITE_JPEG_QUALITY, 100])
    colour = np.dstack([grey, 255 - grey, np.full_like(grey, 40)])
    cv2.imwrite(str(tmp_path / "colour.png"), colour)
    assert load_image(tmp_path / "grey.png").shape == (48, 64)
    assert load_image(tmp_path / "colour.png").shape == (48, 64, 3)
    assert np.array_equal(load_image(tmp_path / "colour.png"), colour)
    loaded = load_image(tmp_path / "grey_as_bgr.jpg")
    assert loaded.ndim == 2 or np.array_equal(loaded[..., 0], loaded[..., 1])  # JPEG may keep 3 equal channels


def test_a_class_no_model_outputs_is_scored_as_misses_and_said(eval_app: typer.Typer, tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.full((48, 64), 90, np.uint8))
    (tmp_path / "labels.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [4, 4, 20, 30]}],
        "categories": [{"id": 3, "name": "forklift"}]}))
    result = CliRunner().invoke(eval_app, ["eval", str(tmp_path / "labels.json"), "--out", str(tmp_path / "o"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "A: no model outputs 'forklift'" in " ".join(result.output.split())
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    forklift = report["runs"][0]["classes"]["forklift"]
    assert forklift["at_threshold"]["recall"] == 0.0 and forklift["coco"]["AP"] == 0.0
    assert "no model outputs" in (tmp_path / "o" / "report.html").read_text()
