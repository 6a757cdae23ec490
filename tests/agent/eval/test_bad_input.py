"""Bad or mismatched labels: exit 2, the file and the entry named, nothing written to DIR."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner


def _coco(tmp: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    cv2.imwrite(str(tmp / "a.png"), np.zeros((48, 64), np.uint8))
    data: dict[str, Any] = {
        "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 4, 20, 30], "iscrowd": 0}],
        "categories": [{"id": 1, "name": "person"}],
    }
    change(data)
    path = tmp / "labels.json"
    path.write_text(json.dumps(data))
    return path


def _set(data: dict[str, Any], where: str, value: Any) -> None:
    section, field = where.split(".")
    data[section][0][field] = value


COCO_CASES = {
    "bbox of 3 numbers": (lambda d: _set(d, "annotations.bbox", [1, 2, 3]), "labels.json: annotations[0].bbox: must be [x, y, width, height]"),
    "bbox of zero width": (lambda d: _set(d, "annotations.bbox", [1, 2, 0, 3]), "annotations[0].bbox: width and height must be > 0"),
    "bbox outside the image": (lambda d: _set(d, "annotations.bbox", [40, 4, 60, 30]), "annotations[0].bbox: [40, 4, 60, 30] lies outside the 64x48 image"),
    "unknown category": (lambda d: _set(d, "annotations.category_id", 7), "labels.json: annotations[0].category_id: 7 is not a category id"),
    "unknown image": (lambda d: _set(d, "annotations.image_id", 9), "annotations[0].image_id: 9 is not an image id"),
    "missing image file": (lambda d: _set(d, "images.file_name", "gone.png"), "labels.json: images[0]: image file"),
    "size mismatch": (lambda d: _set(d, "images.width", 640), "images[0].width: 640, but a.png is 64x48"),
    "upright not a bool": (lambda d: _set(d, "images.upright", "yes"), "images[0].upright: must be true or false"),
    "negative distance": (lambda d: _set(d, "annotations.distance_m", -1), "annotations[0].distance_m: must be a number"),
    "no categories": (lambda d: d.pop("categories"), "labels.json: 'categories' must be a list"),
}


def _invoke(app: typer.Typer, data: Path, out: Path) -> Any:
    return CliRunner().invoke(app, ["eval", str(data), "--out", str(out), "--workers", "1"])


@pytest.mark.parametrize("case", sorted(COCO_CASES))
def test_bad_coco_labels_exit_2_naming_the_entry(eval_app: typer.Typer, tmp_path: Path, case: str) -> None:
    change, message = COCO_CASES[case]
    labels = _coco(tmp_path, change)
    out = tmp_path / "out"
    result = _invoke(eval_app, labels, out)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_not_json(eval_app: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "labels.json"
    bad.write_text('{"images": [')
    result = _invoke(eval_app, bad, tmp_path / "out")
    assert result.exit_code == 2 and "labels.json: not JSON" in result.output
    assert not (tmp_path / "out").exists()


def _yolo(tmp: Path, label_text: str, names: str = "names: [person, dog]\n") -> Path:
    root = tmp / "yolo"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "data.yaml").write_text(names)
    cv2.imwrite(str(root / "images" / "a.jpg"), np.zeros((48, 64), np.uint8))
    (root / "labels" / "a.txt").write_text(label_text)
    return root


YOLO_CASES = {
    "4 numbers": ("0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2\n", "labels/a.txt: line 2: 4 numbers, expected 5 (class cx cy w h)"),
    "class out of range": ("5 0.5 0.5 0.2 0.2\n", "labels/a.txt: line 1: class 5 is not one of the 2 class names"),
    "not normalised": ("0 32 24 10 10\n", "labels/a.txt: line 1: box '0 32 24 10 10' is not inside the image"),
    "not numbers": ("0 a b c d\n", "labels/a.txt: line 1: not numbers"),
}


@pytest.mark.parametrize("case", sorted(YOLO_CASES))
def test_bad_yolo_labels_exit_2_naming_the_line(eval_app: typer.Typer, tmp_path: Path, case: str) -> None:
    text, message = YOLO_CASES[case]
    out = tmp_path / "out"
    result = _invoke(eval_app, _yolo(tmp_path, text), out)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert not out.exists()


def test_yolo_label_without_image_and_without_names(eval_app: typer.Typer, tmp_path: Path) -> None:
    root = _yolo(tmp_path, "0 0.5 0.5 0.2 0.2\n")
    (root / "labels" / "b.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    result = _invoke(eval_app, root, tmp_path / "out")
    assert result.exit_code == 2 and "labels/b.txt: no image of that name" in result.output
    (root / "data.yaml").unlink()
    result = _invoke(eval_app, root, tmp_path / "out")
    assert result.exit_code == 2 and "no class names" in result.output


def test_an_earlier_report_is_left_untouched_by_bad_input(eval_app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"earlier": true}')
    labels = _coco(tmp_path, lambda d: _set(d, "annotations.bbox", [1, 2]))
    assert _invoke(eval_app, labels, out).exit_code == 2
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert (out / "report.json").read_text() == '{"earlier": true}'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # no temp left


def test_a_folder_of_other_files_is_never_replaced(eval_app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    result = _invoke(eval_app, _coco(tmp_path, lambda d: None), out)
    assert result.exit_code == 2 and "is not an eval report folder" in " ".join(result.output.split())
    assert (out / "notes.txt").read_text() == "keep"


def test_unknown_config_and_missing_model(eval_app: typer.Typer, tmp_path: Path) -> None:
    labels = _coco(tmp_path, lambda d: None)
    result = CliRunner().invoke(eval_app, ["eval", str(labels), "--out", str(tmp_path / "o"), "--config", "nope"])
    assert result.exit_code == 2 and "nope" in result.output
    result = CliRunner().invoke(eval_app, ["eval", str(labels), "--out", str(tmp_path / "o"), "--model", "x.tflite"])
    assert result.exit_code == 2 and "--model x.tflite: no such file" in result.output
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model" * 100)
    result = CliRunner().invoke(eval_app, ["eval", str(labels), "--out", str(tmp_path / "o"), "--model", str(junk)])
    assert result.exit_code == 2 and "cannot load the model" in result.output, result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(eval_app, ["eval", str(labels), "--out", str(tmp_path / "o"), "--model", str(junk),
                                           "--labels", "gone.txt"])
    assert result.exit_code == 2 and "--labels gone.txt: no such file" in result.output
    assert not (tmp_path / "o").exists()
