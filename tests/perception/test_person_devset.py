"""Person detection on the labelled grey dev set, at the agent's settings: a floor on recall and
a ceiling on false-person frames (bench/bench_person_devset.py prints the whole table).

The shipped perceiver (COCO detector + person model, calibrated, one NMS, frame-covering boxes
dropped) runs on every dev-set frame as a front camera sees it once upright; a person counts as
found at the shipped person rule's `min_score`. The floor and ceiling are the issue's targets.
"""

from __future__ import annotations

from typing import Any

import cv2
import pytest

from configs import SHIPPED_DIR
from configs.loading import read_yaml
from perception.config import SPOT_BODY_CAMERAS, DetectorConfig
from perception.evaluate import ImageOutcome, load_coco, match, operating_point
from perception.frame import Frame
from perception.perceiver import Perceiver
from tests.support.devset import LABELS

MIN_RECALL = 0.8
MAX_FALSE_FRAMES = 0.05


def _person_rule_min_score() -> float:
    rules: Any = read_yaml(SHIPPED_DIR / "rules" / "default.yaml")
    return float(rules["cues"]["person_close"]["min_score"])


def _outcomes(config: DetectorConfig) -> list[ImageOutcome]:
    perceiver = Perceiver(config)
    out = []
    for image in load_coco(LABELS):
        grey = cv2.imread(str(image.file), cv2.IMREAD_GRAYSCALE)
        found = perceiver.detect_objects(Frame(SPOT_BODY_CAMERAS[0], grey, 0.0, 0.0), rotation_deg=0.0)
        people = [(d.score, d.box) for d in found if d.label == "person"]
        out.append(match(people, image.boxes.get("person", []), image.ignore.get("person", [])))
    return out


@pytest.fixture(scope="module")
def outcomes() -> list[ImageOutcome]:
    return _outcomes(DetectorConfig(num_threads=2, fiducials=False))


def test_people_are_found_with_few_false_frames_at_the_agents_settings(outcomes: list[ImageOutcome]) -> None:
    point = operating_point(outcomes, _person_rule_min_score())
    assert point.positives >= 100 and point.images >= 80  # the whole set was scored
    assert point.recall >= MIN_RECALL, point
    assert point.false_image_rate <= MAX_FALSE_FRAMES, point


def test_the_coco_detector_alone_at_the_same_settings_is_no_better(outcomes: list[ImageOutcome]) -> None:
    """Guards the merge: the person model must add hits, not only false frames."""
    alone = _outcomes(DetectorConfig(num_threads=2, fiducials=False, person_model=None))
    threshold = _person_rule_min_score()
    both, coco = operating_point(outcomes, threshold), operating_point(alone, threshold)
    assert both.hits > coco.hits, (both, coco)
