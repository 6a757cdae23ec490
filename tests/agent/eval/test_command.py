"""`spot-agent eval` end to end on real frames: the AP it prints is pycocotools' on the agent's
own detections, results do not depend on the worker count, compare mode shows both sides."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import cv2
import pytest
import typer
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from support.cli import command_app
from support.devset import LABELS, devset_subset
from typer.testing import CliRunner

import configs
from agent.config import load_agent_config
from perception.frame import Frame
from perception.perceiver import Perceiver


def _run(app: typer.Typer, *args: str) -> Any:
    result = CliRunner().invoke(app, ["eval", *args])
    assert result.exit_code == 0, result.output
    return result


def _pycocotools_stats(labels: Path, label: str) -> list[float]:
    """Independently of eval: the shipped agent config's perceiver on each image as its entry
    says (`camera`, default a front one; upright), its `label` boxes as COCO results,
    pycocotools on the labels file itself. AP, AP50, AP75, AP small/medium/large."""
    detector = load_agent_config(configs.shipped("agent")).detector.model_copy(update={"num_threads": 1})
    perceiver = Perceiver(detector)
    gt = COCO(str(labels))
    category = next(c["id"] for c in gt.dataset["categories"] if c["name"] == label)
    results = []
    for im in gt.dataset["images"]:
        grey = cv2.imread(str(labels.parent / im["file_name"]), cv2.IMREAD_GRAYSCALE)
        frame = Frame(im.get("camera", "frontleft_fisheye_image"), grey, 0.0, 0.0)
        for d in perceiver.detect_objects(frame, rotation_deg=0.0):
            if d.label == label:
                x1, y1, x2, y2 = d.box
                results.append({"image_id": im["id"], "category_id": category, "score": d.score,
                                "bbox": [x1, y1, x2 - x1, y2 - y1]})
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluator.params.catIds = [category]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return [float(v) for v in evaluator.stats[:6]]


AP_KEYS = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large")


def test_devset_ap_printed_equals_pycocotools_on_the_agents_detections(eval_app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = _run(eval_app, str(LABELS), "--out", str(out), "--workers", "2")
    report = json.loads((out / "report.json").read_text())
    person = report["runs"][0]["classes"]["person"]
    stats = _pycocotools_stats(LABELS, "person")
    for key, value in zip(AP_KEYS, stats):
        assert person["coco"][key] == pytest.approx(value, abs=1e-6), key
    assert f"{stats[0]:.3f}" in result.output  # the printed table
    # The agent's threshold is the person rules' min_score; the dev set's README numbers.
    assert person["threshold"] == 0.5 and person["threshold_from"].startswith("rules: ")
    assert person["at_threshold"]["positives"] == 131 and person["at_threshold"]["images"] == 83
    assert person["at_threshold"]["recall"] > 0.8


def test_sim_dataset_ap_equals_pycocotools_and_is_reported_by_distance(
    eval_app: typer.Typer, tmp_path: Path
) -> None:
    """A generated sim dataset (upright frames of several cameras, boxes from geometry with
    distances) through eval: the same AP as pycocotools, recall by distance bucket."""
    from sim.dataset.command import dataset_command

    sim_app = command_app("dataset", dataset_command)
    data = tmp_path / "simset"
    made = CliRunner().invoke(sim_app, ["dataset", "--out", str(data), "--frames", "24", "--seed", "7"])
    assert made.exit_code == 0, made.output
    out = tmp_path / "report"
    _run(eval_app, str(data / "labels.json"), "--out", str(out), "--workers", "2")
    classes = json.loads((out / "report.json").read_text())["runs"][0]["classes"]
    for label in ("person", "stop sign"):
        if label not in classes:
            continue
        for key, value in zip(AP_KEYS, _pycocotools_stats(data / "labels.json", label)):
            assert classes[label]["coco"][key] == pytest.approx(value, abs=1e-6), (label, key)
    by_distance = classes["person"]["by_distance"]
    assert by_distance and sum(b["positives"] for b in by_distance.values()) == \
        classes["person"]["at_threshold"]["positives"]


def _without_timing(report: dict[str, Any]) -> dict[str, Any]:
    for run in report["runs"]:
        run.pop("seconds"), run.pop("workers")
    return report


def test_results_do_not_depend_on_the_worker_count(
    eval_app: typer.Typer, subset: Path, devset_dir: Path, tmp_path: Path
) -> None:
    reports = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        _run(eval_app, str(subset), "--images", str(devset_dir), "--out", str(out), "--workers", workers)
        reports.append(_without_timing(json.loads((out / "report.json").read_text())))
    assert reports[0] == reports[1]
    assert reports[0]["runs"][0]["classes"]["person"]["at_threshold"]["hits"] > 0


def test_compare_mode_shows_both_sides_and_the_difference(
    eval_app: typer.Typer, devset_dir: Path, tmp_path: Path
) -> None:
    # With a close-up portrait: the person model keeps her (it confirms the frame-covering box),
    # the COCO detector alone drops her box as covering the frame.
    subset = devset_subset(tmp_path / "subset", 10, extra=("images/mpl_grace_hopper.jpg",))
    b = tmp_path / "coco_only.yaml"  # side B: the COCO detector alone, same rules
    b.write_text(f"rules: {configs.find('default', configs.RULES)}\ndetector: {{person_model: null}}\n")
    out = tmp_path / "cmp"
    result = _run(eval_app, str(subset), "--images", str(devset_dir), "--out", str(out), "--compare-config", str(b))
    report = json.loads((out / "report.json").read_text())
    a_run, b_run = report["runs"]
    assert (a_run["name"], b_run["name"]) == ("A", "B")
    assert len(a_run["models"]) == 2 and len(b_run["models"]) == 1
    a_ap, b_ap = a_run["classes"]["person"]["coco"]["AP"], b_run["classes"]["person"]["coco"]["AP"]
    assert a_ap != b_ap  # the person model changes the boxes
    page = (out / "report.html").read_text()
    assert "<th>B - A</th>" in page and f"<td>{a_ap:.3f}</td><td>{b_ap:.3f}</td><td" in page
    assert f"{b_ap - a_ap:+.3f}</td>" in page
    assert " B " in result.output and " A " in result.output


def test_yolo_folder_gives_the_same_numbers_as_its_coco_twin(
    eval_app: typer.Typer, subset: Path, devset_dir: Path, tmp_path: Path
) -> None:
    """The subset exported as YOLO (as Roboflow / Label Studio write it) scores as the COCO file."""
    data = json.loads(subset.read_text())
    root = tmp_path / "yolo"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "data.yaml").write_text("names: [person]\n")
    for im in data["images"]:
        name = Path(im["file_name"]).name
        (root / "images" / name).write_bytes((devset_dir / im["file_name"]).read_bytes())
        lines = [f"0 {(x + w / 2) / im['width']:.9f} {(y + h / 2) / im['height']:.9f} {w / im['width']:.9f} "
                 f"{h / im['height']:.9f}" for a in data["annotations"] if a["image_id"] == im["id"] and not a["iscrowd"]
                 for x, y, w, h in [a["bbox"]]]
        (root / "labels" / Path(name).with_suffix(".txt")).write_text("\n".join(lines))
    no_crowd = {**data, "annotations": [a for a in data["annotations"] if not a["iscrowd"]]}
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps(no_crowd))
    _run(eval_app, str(root), "--out", str(tmp_path / "y"), "--workers", "1")
    _run(eval_app, str(coco), "--images", str(devset_dir), "--out", str(tmp_path / "c"), "--workers", "1")
    y = json.loads((tmp_path / "y" / "report.json").read_text())["runs"][0]["classes"]["person"]
    c = json.loads((tmp_path / "c" / "report.json").read_text())["runs"][0]["classes"]["person"]
    assert y["at_threshold"] == c["at_threshold"]
    for key, value in c["coco"].items():
        assert y["coco"][key] == pytest.approx(value, abs=1e-6)
