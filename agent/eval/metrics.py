"""Scores of one model set on one labelled set, per class.

Two kinds of number, each from the tool made for it:
- COCO AP (AP@[.5:.95], AP50, AP75, AP small/medium/large) by pycocotools' `COCOeval`, the
  reference implementation, on the detections the agent's perception kept;
- what the agent acts on: recall, precision and the share of images with a false box at the
  class's threshold (the lowest `min_score` of the rules' cues for that label, else the
  detector's `score_threshold`), by object size and by distance, from
  `perception.evaluate`'s greedy matcher (IoU >= 0.5; ignore regions count neither way).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from agent.eval.dataset import Annotation, Dataset
from perception.detection import Detection
from perception.evaluate import Box, ImageOutcome, match, operating_point

SMALL, LARGE = 32.0**2, 96.0**2  # COCO's size limits (box area, pixels)
SIZES = ("small", "medium", "large")
DISTANCES = ((0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0), (8.0, float("inf")))
AP_KEYS = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large")
PR_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))
WORST = 6  # thumbnails of misses and of false boxes per class


@dataclass(frozen=True)
class Counts:
    """Recall and precision of one group of boxes at one threshold."""

    positives: int
    hits: int
    false_positives: int | None  # None where a false box has no group (distance)

    @property
    def recall(self) -> float | None:
        return self.hits / self.positives if self.positives else None

    @property
    def precision(self) -> float | None:
        if self.false_positives is None or self.hits + self.false_positives == 0:
            return None
        return self.hits / (self.hits + self.false_positives)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "recall": self.recall, "precision": self.precision}


@dataclass(frozen=True)
class Example:
    """A labelled box missed, or a false box, at the class's threshold (for thumbnails)."""

    image_id: int
    box: Box
    score: float | None  # the false box's score; None for a miss


@dataclass
class ClassResult:
    label: str
    threshold: float
    threshold_from: str  # "rules: cue_a, cue_b" or "detector.score_threshold"
    ap: dict[str, float | None]
    at_threshold: dict[str, Any]
    by_size: dict[str, Counts]
    by_distance: dict[str, Counts]
    by_visibility: dict[str, Counts]  # occluded / truncated boxes, where the labels say so
    pr_points: list[dict[str, Any]]
    curve: list[tuple[float, float, float]]  # (threshold, recall, precision) at every score
    misses: list[Example] = field(default_factory=list)
    false_boxes: list[Example] = field(default_factory=list)


def evaluate_class(
    dataset: Dataset, detections: dict[int, list[Detection]], label: str, threshold: tuple[float, str],
    ap: dict[str, float | None],
) -> ClassResult:
    truths: list[list[Annotation]] = []
    outcomes: list[ImageOutcome] = []
    for image in dataset.images:
        keep = [a for a in image.annotations if a.label == label and not a.ignore]
        ignore = [a.box for a in image.annotations if a.label == label and a.ignore]
        dets = [(d.score, d.box) for d in detections[image.id] if d.label == label]
        truths.append(keep)
        outcomes.append(match(dets, [a.box for a in keep], ignore))
    t = threshold[0]
    point = operating_point(outcomes, t)
    overall = _counts(outcomes, truths, t, lambda a: True, lambda b: True)
    return ClassResult(
        label=label, threshold=t, threshold_from=threshold[1], ap=ap,
        at_threshold={**asdict(point), "precision": overall.precision,
                      "false_image_rate": point.false_image_rate},
        by_size={s: _counts(outcomes, truths, t, lambda a, s=s: size_of(a.area) == s,  # type: ignore[misc]
                            lambda b, s=s: size_of(_area(b)) == s) for s in SIZES},  # type: ignore[misc]
        by_distance=_by_distance(outcomes, truths, t),
        by_visibility=_by_visibility(outcomes, truths, t),
        pr_points=[_pr_point(outcomes, truths, x) for x in sorted({*PR_GRID, t})],
        curve=_curve(outcomes, truths),
        misses=_misses(dataset, outcomes, truths, t),
        false_boxes=_false_boxes(dataset, outcomes, t),
    )


def size_of(area: float) -> str:
    return "small" if area < SMALL else "large" if area > LARGE else "medium"


def _area(box: Box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def _counts(
    outcomes: Sequence[ImageOutcome], truths: Sequence[list[Annotation]], t: float,
    truth_in: Callable[[Annotation], bool], false_in: Callable[[Box], bool] | None,
) -> Counts:
    positives = sum(1 for boxes in truths for a in boxes if truth_in(a))
    hits = sum(1 for o, boxes in zip(outcomes, truths) for s in o.scored
               if s.hit and s.score >= t and s.truth is not None and truth_in(boxes[s.truth]))
    false = None
    if false_in is not None:
        false = sum(1 for o in outcomes for s in o.scored
                    if s.hit is False and s.score >= t and s.box is not None and false_in(s.box))
    return Counts(positives, hits, false)


def _by_distance(outcomes: Sequence[ImageOutcome], truths: Sequence[list[Annotation]], t: float) -> dict[str, Counts]:
    if not any(a.distance_m is not None for boxes in truths for a in boxes):
        return {}
    out = {}
    for lo, hi in DISTANCES:
        name = f"{lo:g}-{hi:g} m" if hi != float("inf") else f"{lo:g}+ m"
        out[name] = _counts(outcomes, truths, t,
                            lambda a, lo=lo, hi=hi: a.distance_m is not None and lo <= a.distance_m < hi,  # type: ignore[misc]
                            None)  # a false box has no labelled distance: recall only
    return out


def _by_visibility(outcomes: Sequence[ImageOutcome], truths: Sequence[list[Annotation]], t: float) -> dict[str, Counts]:
    """Recall of the boxes labelled occluded / truncated and of those labelled not."""
    out = {}
    for flag in ("occluded", "truncated"):
        values = {getattr(a, flag) for boxes in truths for a in boxes} - {None}
        for value in sorted(values, reverse=True):
            name = flag if value else f"not {flag}"
            out[name] = _counts(outcomes, truths, t, lambda a, f=flag, v=value: getattr(a, f) is v, None)  # type: ignore[misc]
    return out


def _pr_point(outcomes: Sequence[ImageOutcome], truths: Sequence[list[Annotation]], t: float) -> dict[str, Any]:
    point = operating_point(outcomes, t)
    c = _counts(outcomes, truths, t, lambda a: True, lambda b: True)
    return {"threshold": t, "recall": c.recall, "precision": c.precision, "hits": c.hits,
            "false_positives": c.false_positives, "false_image_rate": point.false_image_rate}


def _curve(outcomes: Sequence[ImageOutcome], truths: Sequence[list[Annotation]]) -> list[tuple[float, float, float]]:
    """(threshold, recall, precision) at each distinct score, highest first: the PR curve."""
    scored = sorted((s.score, bool(s.hit)) for o in outcomes for s in o.scored if s.hit is not None)
    positives = sum(len(b) for b in truths)
    out: list[tuple[float, float, float]] = []
    hits = kept = 0
    for score, hit in reversed(scored):
        hits, kept = hits + hit, kept + 1
        if positives:
            out.append((score, hits / positives, hits / kept))
    return out


def _misses(dataset: Dataset, outcomes: Sequence[ImageOutcome], truths: Sequence[list[Annotation]],
            t: float) -> list[Example]:
    out = []
    for image, o, boxes in zip(dataset.images, outcomes, truths):
        found = {s.truth for s in o.scored if s.hit and s.score >= t}
        out += [Example(image.id, a.box, None) for i, a in enumerate(boxes) if i not in found]
    return sorted(out, key=lambda e: (-_area(e.box), e.image_id))[:WORST]  # the biggest: the worst


def _false_boxes(dataset: Dataset, outcomes: Sequence[ImageOutcome], t: float) -> list[Example]:
    out = [Example(image.id, s.box, s.score) for image, o in zip(dataset.images, outcomes)
           for s in o.scored if s.hit is False and s.score >= t and s.box is not None]
    return sorted(out, key=lambda e: (-(e.score or 0.0), e.image_id))[:WORST]


def coco_ap(dataset: Dataset, detections: dict[int, list[Detection]]) -> dict[str, dict[str, float | None]]:
    """Per class: pycocotools' AP numbers (None where the class has no box of that size)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    cat_ids = {label: i + 1 for i, label in enumerate(dataset.classes)}
    gt, dt = COCO(), COCO()
    gt.dataset = coco_ground_truth(dataset, cat_ids)
    dt.dataset = {**gt.dataset, "annotations": coco_detections(dataset, detections, cat_ids)}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt.createIndex()
        dt.createIndex()
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"]  # [iou, recall, class, area, max dets]
    iou_50, iou_75 = (int(np.argmin(np.abs(evaluator.params.iouThrs - v))) for v in (0.5, 0.75))
    out = {}
    for k, label in enumerate(dataset.classes):
        def mean(p: np.ndarray) -> float | None:
            p = p[p > -1]
            return float(np.mean(p)) if p.size else None

        cells = {"AP": precision[:, :, k, 0, -1], "AP50": precision[iou_50, :, k, 0, -1],
                 "AP75": precision[iou_75, :, k, 0, -1], "AP_small": precision[:, :, k, 1, -1],
                 "AP_medium": precision[:, :, k, 2, -1], "AP_large": precision[:, :, k, 3, -1]}
        out[label] = {key: mean(cells[key]) for key in AP_KEYS}
    return out


def coco_ground_truth(dataset: Dataset, cat_ids: dict[str, int]) -> dict[str, Any]:
    """The labels as COCO ground truth: area as the file gives it (else the box's), as pycocotools
    reads the file;
    `ignore: 1` becomes `iscrowd: 1`, the flag COCOeval reads for a region that counts neither way."""
    annotations: list[dict[str, Any]] = []
    for image in dataset.images:
        for a in image.annotations:
            if a.label in cat_ids:
                x1, y1, x2, y2 = a.box
                annotations.append({"id": len(annotations) + 1, "image_id": image.id, "category_id": cat_ids[a.label],
                                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": a.area, "iscrowd": int(a.ignore)})
    return {"images": [{"id": im.id, "width": im.width, "height": im.height} for im in dataset.images],
            "categories": [{"id": i, "name": label} for label, i in cat_ids.items()],
            "annotations": annotations}


def coco_detections(dataset: Dataset, detections: dict[int, list[Detection]], cat_ids: dict[str, int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for image in dataset.images:
        for d in detections[image.id]:
            if d.label in cat_ids:
                x1, y1, x2, y2 = (float(v) for v in d.box)
                out.append({"id": len(out) + 1, "image_id": image.id, "category_id": cat_ids[d.label],
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(d.score),
                            "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    return out
