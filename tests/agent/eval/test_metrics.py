"""`agent.eval.metrics`: COCO AP equals pycocotools' own, and recall/precision at the agent's
thresholds equal counts done by hand on a tiny set."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from agent.eval.dataset import Annotation, Dataset, EvalImage
from agent.eval.metrics import coco_ap, evaluate_class
from agent.eval.subject import load_subject
from perception.detection import Detection


def _image(tmp: Path, image_id: int, annotations: list[Annotation], size: tuple[int, int] = (100, 100)) -> EvalImage:
    file = tmp / f"im{image_id}.png"
    cv2.imwrite(str(file), np.zeros((size[1], size[0]), np.uint8))
    return EvalImage(image_id, file, size[0], size[1], annotations=tuple(annotations))


def _det(label: str, score: float, box: tuple[float, float, float, float]) -> Detection:
    return Detection(label, 0, score, box)


@pytest.fixture()
def tiny(tmp_path: Path) -> tuple[Dataset, dict[int, list[Detection]]]:
    """Three images, counted by hand in test_recall_precision_at_threshold_by_hand."""
    a = Annotation("person", (10, 10, 40, 50), distance_m=3.0, occluded=False)  # 30 x 40 = 1200 px: medium
    b = Annotation("person", (60, 60, 70, 70), distance_m=9.0, occluded=True)  # 100 px: small
    c = Annotation("person", (0, 0, 100, 100))  # large, no distance
    ignore = Annotation("person", (0, 0, 50, 50), ignore=True)
    images = [_image(tmp_path, 1, [a, b]), _image(tmp_path, 2, [ignore]), _image(tmp_path, 3, [c])]
    detections = {
        1: [_det("person", 0.9, (10, 10, 40, 50)),  # hit A
            _det("person", 0.6, (0, 80, 20, 100)),  # false, 400 px: small
            _det("person", 0.3, (60, 60, 70, 70))],  # hit B, below the threshold
        2: [_det("person", 0.8, (5, 5, 45, 45)),  # inside the ignore region: neither
            _det("person", 0.7, (60, 60, 90, 90))],  # false, 900 px: small
        3: [_det("person", 0.55, (0, 0, 100, 80))],  # hit C (IoU 0.8)
    }
    return Dataset(["tiny"], images, ["person"]), detections


def test_recall_precision_at_threshold_by_hand(tiny: tuple[Dataset, dict[int, list[Detection]]]) -> None:
    dataset, detections = tiny
    ap = coco_ap(dataset, detections)["person"]
    c = evaluate_class(dataset, detections, "person", (0.5, "rules: x.min_score"), ap)
    at = c.at_threshold
    # >= 0.5: hits A and C of A, B, C; false: 0.6 (image 1) and 0.7 (image 2); 0.8 is ignored.
    assert (at["hits"], at["positives"], at["false_positives"]) == (2, 3, 2)
    assert at["recall"] == pytest.approx(2 / 3) and at["precision"] == pytest.approx(0.5)
    assert (at["images_with_false"], at["images"]) == (2, 3)
    assert at["false_image_rate"] == pytest.approx(2 / 3)
    sizes = {k: (v.positives, v.hits, v.false_positives) for k, v in c.by_size.items()}
    assert sizes == {"small": (1, 0, 2), "medium": (1, 1, 0), "large": (1, 1, 0)}
    assert c.by_size["small"].precision == 0.0 and c.by_size["medium"].recall == 1.0
    distances = {k: (v.positives, v.hits) for k, v in c.by_distance.items()}
    assert distances == {"0-2 m": (0, 0), "2-4 m": (1, 1), "4-6 m": (0, 0), "6-8 m": (0, 0), "8+ m": (1, 0)}
    assert {k: (v.positives, v.hits) for k, v in c.by_visibility.items()} == {"occluded": (1, 0), "not occluded": (1, 1)}
    low = next(p for p in c.pr_points if p["threshold"] == 0.25)  # B's 0.3 counts too
    assert (low["hits"], low["false_positives"]) == (3, 2) and low["precision"] == pytest.approx(0.6)
    assert [m.box for m in c.misses] == [(60, 60, 70, 70)]
    assert [f.score for f in c.false_boxes] == [0.7, 0.6]


def _reference_ap(dataset: Dataset, detections: dict[int, list[Detection]], label: str) -> list[float]:
    """pycocotools' own summary for one class, from a GT file and a results list written here."""
    names = dataset.classes
    annotations = []
    for im in dataset.images:
        for a in im.annotations:
            x1, y1, x2, y2 = a.box
            annotations.append({"id": len(annotations) + 1, "image_id": im.id, "category_id": names.index(a.label) + 1,
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                "iscrowd": int(a.ignore)})
    gt_file = dataset.images[0].file.parent / "gt.json"
    gt_file.write_text(json.dumps({
        "images": [{"id": im.id, "width": im.width, "height": im.height, "file_name": im.file.name} for im in dataset.images],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(names)], "annotations": annotations}))
    results = [{"image_id": i, "category_id": names.index(d.label) + 1, "score": d.score,
                "bbox": [d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]]}
               for i, dets in detections.items() for d in dets if d.label in names]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        evaluator = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluator.params.catIds = [names.index(label) + 1]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return list(evaluator.stats[:6])


def test_ap_per_class_equals_pycocotools(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    images, detections = [], {}
    for i in range(1, 13):
        annotations, dets = [], []
        for _ in range(int(rng.integers(0, 4))):
            label = ["person", "dog"][int(rng.integers(0, 2))]
            w, h = rng.uniform(8, 150, 2)
            x, y = rng.uniform(0, 320 - w), rng.uniform(0, 240 - h)
            annotations.append(Annotation(label, (x, y, x + w, y + h), ignore=bool(rng.random() < 0.15)))
            for _ in range(int(rng.integers(0, 3))):  # near-misses and hits at various IoUs
                jitter = rng.normal(0, 0.15 * min(w, h), 4)
                dets.append(_det(label, float(rng.uniform(0.3, 1.0)),
                                 (x + jitter[0], y + jitter[1], x + w + jitter[2], y + h + jitter[3])))
        for _ in range(int(rng.integers(0, 2))):  # false boxes
            dets.append(_det("person", float(rng.uniform(0.3, 0.9)), (10, 10, 60, 90)))
        images.append(_image(tmp_path, i, annotations, (320, 240)))
        detections[i] = dets
    dataset = Dataset(["random"], images, ["person", "dog"])
    ours = coco_ap(dataset, detections)
    for label in dataset.classes:
        reference = _reference_ap(dataset, detections, label)
        mine = [ours[label][k] for k in ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large")]
        for r, m in zip(reference, mine):
            assert (m is None and r == -1) or m == pytest.approx(r, abs=1e-6), (label, reference, mine)
        assert ours[label]["AP"] is not None and 0 < ours[label]["AP"] < 1  # a case that discriminates


def test_thresholds_are_the_lowest_cue_min_score_else_the_detector_threshold(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("""
cues:
  near: {label: person, min_score: 0.6}
  far: {label: person, min_score: 0.4}
  sign: {label: stop sign, min_score: 0.7}
rules:
  - {name: stop_near, cue: near, behavior: stop, priority: 10}
  - {name: stop_far, cue: far, behavior: stop, priority: 20}
  - {name: stop_sign, cue: sign, behavior: stop, priority: 30}
""")
    config = tmp_path / "agent.yaml"
    config.write_text("rules: rules.yaml\ndetector: {score_threshold: 0.3}\n")
    subject = load_subject("A", str(config), None, None)
    assert subject.threshold_for("person") == (0.4, "rules: far.min_score")
    assert subject.threshold_for("stop sign") == (0.7, "rules: sign.min_score")
    assert subject.threshold_for("dog") == (0.3, "detector.score_threshold")
