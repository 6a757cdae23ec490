"""Several detectors, one set of detections: calibrated scores, one NMS, keypoints kept.

The COCO detector and the person model both report people. Their boxes are put on one score
scale (`perception.calibration`), boxes that cover most of the frame are dropped (on real frames
a whole-frame "person" at 0.5-0.6 came from a cat photo, a star field, a close wall: no object
a cue should react to fills the frame), and one per-class NMS keeps the best box of each object,
so one person never raises two cues. The kept detection has the best score of its object, the
COCO detector's box when it saw the object (its boxes reach the feet, which placing a person on
the floor needs) and the person model's keypoints when that saw it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from perception.boxes import iou, mostly_inside
from perception.calibration import ScoreCalibration
from perception.decoders.base import nms_keep
from perception.detection import Detection


def calibrated(found: Sequence[Detection], calibration: ScoreCalibration, model: str) -> list[Detection]:
    """`found` with scores on the shared scale, each marked with the model that found it."""
    return [
        dataclasses.replace(d, score=calibration(d.label, d.score), model=model)
        for d in found
    ]


def covers_frame(box: tuple[float, float, float, float], width: int, height: int, max_fraction: float) -> bool:
    """True when `box` covers more than `max_fraction` of a `width` x `height` image."""
    x1, y1, x2, y2 = box
    return (x2 - x1) * (y2 - y1) > max_fraction * width * height


def resolve(found: Sequence[Detection], stage: Sequence[Detection], band: tuple[float, float]) -> list[Detection]:
    """`found` after a second stage looked at its unsure people (`band`: [low, high) on the shared
    scale): the stage speaks only about them. A person it finds on an unsure one (overlapping or
    one inside the other) raises that one's score to its own and gives it its keypoints, keeping
    the first model's box; a person inside a sure one (score >= high) is that person again and
    only lends it its keypoints; any other person it finds (in the crop, missed by the first model) is added."""
    low, high = band
    out = list(found)
    unsure = [i for i, d in enumerate(out) if d.label == "person" and low <= d.score < high]
    certain = [i for i, d in enumerate(out) if d.label == "person" and d.score >= high]
    added = []
    for person in stage:
        sure = [i for i in certain if mostly_inside(person.box, [out[i].box])]
        if sure:  # that person again: only the skeleton is new
            i = max(sure, key=lambda i: iou(person.box, out[i].box))
            if out[i].keypoints is None:
                out[i] = dataclasses.replace(out[i], keypoints=person.keypoints)
            continue
        same = [i for i in unsure if _same_person(person.box, out[i].box)]
        if not same:
            added.append(person)
            continue
        best = max(same, key=lambda i: iou(person.box, out[i].box))
        if person.score > out[best].score:
            out[best] = dataclasses.replace(out[best], score=person.score, keypoints=person.keypoints,
                                            model=person.model)
        elif out[best].keypoints is None:
            out[best] = dataclasses.replace(out[best], keypoints=person.keypoints)
    return out + added


def confirmed(close_ups: Sequence[Detection], stage: Sequence[Detection], sure: float) -> list[Detection]:
    """The frame-covering people (`close_ups`, dropped otherwise) that a person model's run
    (`stage`) confirms: it is sure (score >= `sure`) of a person on them. Each keeps its own
    score and box, with the confirming person's keypoints."""
    out = []
    for person in close_ups:
        confirming = [p for p in stage if p.score >= sure and _same_person(p.box, person.box)]
        if confirming:
            best = max(confirming, key=lambda p: p.score)
            out.append(dataclasses.replace(person, keypoints=best.keypoints))
    return out


def _same_person(a: Sequence[float], b: Sequence[float]) -> bool:
    """A pose model's box (keypoint extent) and a box model's box of one person: they overlap,
    or one lies mostly inside the other (a torso-only box, a box ending at the ankles)."""
    return iou(a, b) >= 0.3 or mostly_inside(a, [b]) or mostly_inside(b, [a])


def merge(found: Sequence[Detection], score_threshold: float, iou_threshold: float, max_detections: int) -> list[Detection]:
    """One detection per object: the calibrated boxes of every model at or above
    `score_threshold`, through one per-class NMS (best score first)."""
    kept = [d for d in found if d.score >= score_threshold]
    if len(kept) < 2:
        return kept
    labels = sorted({d.label for d in kept})
    class_ids = np.array([labels.index(d.label) for d in kept], np.int32)
    boxes = np.array([d.box for d in kept], np.float32)
    scores = np.array([d.score for d in kept], np.float32)
    winners = nms_keep(boxes, scores, class_ids, iou_threshold, max_detections)
    return [_with_keypoints(kept[int(i)], kept, iou_threshold) for i in winners]


def _with_keypoints(winner: Detection, found: Sequence[Detection], iou_threshold: float) -> Detection:
    """The winner, with the box of the best box-model detection of the same object (pose models'
    boxes are drawn around keypoints, ending at the ankles: a box that stops short of the feet
    puts the person too close when it is placed on the floor) and the best pose's keypoints."""
    same = [d for d in found if d.label == winner.label and iou(d.box, winner.box) >= iou_threshold]
    boxes = [d for d in same if d.keypoints is None]
    poses = [d for d in same if d.keypoints is not None]
    box = max(boxes, key=lambda d: d.score).box if boxes else winner.box
    keypoints = max(poses, key=lambda d: d.score).keypoints if poses else None
    return dataclasses.replace(winner, box=box, keypoints=keypoints)


