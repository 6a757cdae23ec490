"""Matching detections to labelled boxes, operating points and precision curves."""

from __future__ import annotations

import json
from pathlib import Path

from perception.evaluate import false_image_curve, load_coco, match, operating_point

PERSON_A = (10.0, 10.0, 60.0, 160.0)
PERSON_B = (200.0, 20.0, 250.0, 170.0)


def test_greedy_matching_counts_each_person_once() -> None:
    out = match([(0.9, PERSON_A), (0.8, (12.0, 12.0, 62.0, 158.0)), (0.4, (400.0, 0.0, 450.0, 90.0))],
                [PERSON_A, PERSON_B])
    assert [s.hit for s in out.scored] == [True, False, False]  # duplicate and stray box are false
    assert out.positives == 2


def test_detections_in_ignore_regions_do_not_count() -> None:
    tiny_far_person = (500.0, 100.0, 510.0, 125.0)
    out = match([(0.5, (499.0, 99.0, 511.0, 126.0))], [], ignore=[tiny_far_person])
    assert [s.hit for s in out.scored] == [None]
    assert operating_point([out], 0.3).images_with_false == 0


def test_operating_point_and_curve() -> None:
    positives = match([(0.9, PERSON_A), (0.2, PERSON_B)], [PERSON_A, PERSON_B])
    empty = [match([(0.5, (0.0, 0.0, 40.0, 40.0))], []) for _ in range(2)] + [match([], []) for _ in range(7)]
    p = operating_point([positives, *empty], 0.3)
    assert (p.hits, p.positives, p.recall) == (1, 2, 0.5)
    assert (p.images_with_false, p.images, p.negative_images_with_false, p.negative_images) == (2, 10, 2, 9)
    low = operating_point([positives, *empty], 0.1)
    assert low.recall == 1.0
    # 10 images: a false box at 0.3 in 4 of them, at 0.6 in 1; the curve says 1 - false-image share.
    images = [match([(0.9, PERSON_A), (0.3, (300.0, 0.0, 340.0, 90.0))], [PERSON_A]) for _ in range(3)]
    images += [match([(0.6, (0.0, 0.0, 40.0, 40.0))], [])] + [match([], []) for _ in range(6)]
    curve = false_image_curve(images, [0.1, 0.2, 0.5, 0.7, 0.9])
    assert curve == [(0.0, 0.0), (0.095, 0.0), (0.1, 0.6), (0.5, 0.9), (0.7, 1.0)]

def test_coco_loading(tmp_path: Path) -> None:
    labels = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [100, 20, 5, 10], "iscrowd": 1},
        ],
    }
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    (image,) = load_coco(tmp_path / "labels.json")
    assert image.file == tmp_path / "a.jpg"
    assert image.boxes == {"person": [(10.0, 20.0, 40.0, 60.0)]}
    assert image.ignore == {"person": [(100.0, 20.0, 105.0, 30.0)]}
