"""Detections against labelled boxes: matches, recall, false-positive images, score curves.

The measuring half of calibration (`perception.calibration`) and of the person dev-set benchmark
(`bench/bench_person_devset.py`). Labels are COCO JSON, as CVAT, Label Studio and Roboflow export
them: boxes `[x, y, w, h]` in image pixels; `iscrowd: 1` marks an ignore region (a person too
small or too hidden to expect), whose detections count neither as hits nor as false positives.

Matching is the usual greedy one: detections in descending score take the unmatched labelled box
of their class with the highest IoU >= 0.5.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from perception.boxes import Box, iou_matrix, mostly_inside


@dataclass(frozen=True)
class LabelledImage:
    file: Path
    boxes: dict[str, list[Box]]  # label -> boxes to find
    ignore: dict[str, list[Box]]  # label -> regions where detections do not count


@dataclass(frozen=True)
class Scored:
    """One detection's score and whether it matched a labelled box (None: in an ignore region);
    `truth` is the index of the box it matched, `box` the detection's own box."""

    score: float
    hit: bool | None
    truth: int | None = None
    box: Box | None = None


@dataclass
class ImageOutcome:
    """One image, one class: its detections' outcomes and how many boxes it had to find."""

    scored: list[Scored] = field(default_factory=list)
    positives: int = 0


def load_coco(path: Path) -> list[LabelledImage]:
    """The images of a COCO JSON file (relative file names resolve against the file's folder)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    names = {c["id"]: c["name"] for c in data["categories"]}
    images = {im["id"]: LabelledImage(Path(path).parent / im["file_name"], {}, {}) for im in data["images"]}
    for ann in data["annotations"]:
        x, y, w, h = (float(v) for v in ann["bbox"])
        image = images[ann["image_id"]]
        target = image.ignore if ann.get("iscrowd") or ann.get("ignore") else image.boxes
        target.setdefault(names[ann["category_id"]], []).append((x, y, x + w, y + h))
    return list(images.values())


def match(
    detections: Iterable[tuple[float, Box]], truth: Sequence[Box], ignore: Sequence[Box] = (), min_iou: float = 0.5
) -> ImageOutcome:
    """Greedy matching of (score, box) detections to `truth`; a detection that matches nothing
    but overlaps an ignore region by `min_iou` (or lies mostly inside one) is not counted."""
    dets = sorted(detections, key=lambda d: -d[0])
    ious = iou_matrix([b for _, b in dets], truth)
    taken = np.zeros(len(truth), bool)
    outcome = ImageOutcome(positives=len(truth))
    for i, (score, box) in enumerate(dets):
        if len(truth):
            candidates = np.where(taken, -1.0, ious[i])
            j = int(np.argmax(candidates))
            if candidates[j] >= min_iou:
                taken[j] = True
                outcome.scored.append(Scored(score, True, j, box))
                continue
        outcome.scored.append(Scored(score, None if _in_ignore(box, ignore, min_iou) else False, None, box))
    return outcome


def _in_ignore(box: Box, ignore: Sequence[Box], min_iou: float) -> bool:
    return bool(ignore) and (mostly_inside(box, ignore) or bool(iou_matrix([box], list(ignore)).max() >= min_iou))


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    recall: float
    hits: int
    positives: int
    false_positives: int
    images_with_false: int
    images: int
    negative_images_with_false: int
    negative_images: int

    @property
    def false_image_rate(self) -> float:
        return self.images_with_false / self.images if self.images else 0.0


def operating_point(outcomes: Sequence[ImageOutcome], threshold: float) -> OperatingPoint:
    """Recall and false-positive images when boxes scoring >= `threshold` are kept."""
    hits = sum(1 for o in outcomes for s in o.scored if s.hit and s.score >= threshold)
    positives = sum(o.positives for o in outcomes)
    false_per_image = [sum(1 for s in o.scored if s.hit is False and s.score >= threshold) for o in outcomes]
    negatives = [f for o, f in zip(outcomes, false_per_image) if o.positives == 0]
    return OperatingPoint(
        threshold=threshold,
        recall=hits / positives if positives else 1.0,
        hits=hits,
        positives=positives,
        false_positives=sum(false_per_image),
        images_with_false=sum(1 for f in false_per_image if f),
        images=len(outcomes),
        negative_images_with_false=sum(1 for f in negatives if f),
        negative_images=len(negatives),
    )


def false_image_curve(outcomes: Sequence[ImageOutcome], raw_grid: Sequence[float]) -> list[tuple[float, float]]:
    """(raw threshold, 1 - share of images with a false box at raw >= it) on `raw_grid`: the
    calibrated scale (`perception.calibration`). It stops at the first threshold with no false
    image left; below the lowest grid point the score drops to 0 (nothing measured there)."""
    knots: list[tuple[float, float]] = []
    for t in sorted(raw_grid):
        rate = operating_point(outcomes, t).false_image_rate
        if knots and round(1.0 - rate, 4) == knots[-1][1] and rate > 0.0:
            continue  # no change: keep the knot where this level starts
        knots.append((round(float(t), 4), round(1.0 - rate, 4)))
        if rate == 0.0:
            break
    if knots and knots[0][0] > 0.0:
        # Below the lowest measured threshold nothing is vouched for: the score drops to 0 there
        # (else a model asked for calibrated 0.35 would keep unmeasured boxes at raw 0.02).
        step = min(0.005, knots[0][0] / 2)
        knots[:0] = [(0.0, 0.0), (round(knots[0][0] - step, 4), 0.0)]
    return knots
