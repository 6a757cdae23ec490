"""Score calibration and the merge of several models' detections."""

from __future__ import annotations

import pytest

from perception.calibration import ScoreCalibration, ScoreCurve
from perception.combine import calibrated, covers_frame, merge
from perception.detection import Detection

MOVENET_LIKE = ScoreCurve(((0.0, 0.0), (0.1, 0.5), (0.3, 0.9)))


def test_curve_interpolates_and_clamps() -> None:
    assert MOVENET_LIKE(0.05) == pytest.approx(0.25)
    assert MOVENET_LIKE(0.2) == pytest.approx(0.7)
    assert MOVENET_LIKE(0.9) == pytest.approx(0.9)


def test_raw_for_inverts_the_curve() -> None:
    for calibrated_score in (0.25, 0.5, 0.7, 0.9):
        raw = MOVENET_LIKE.raw_for(calibrated_score)
        assert MOVENET_LIKE(raw) == pytest.approx(calibrated_score)
    assert MOVENET_LIKE.raw_for(0.95) > 1.0  # unreachable: the model keeps nothing


@pytest.mark.parametrize(
    "knots",
    [((0.1, 0.5),), ((0.3, 0.5), (0.1, 0.9)), ((0.1, 0.9), (0.3, 0.5)), ((0.1, 0.5), (1.5, 0.9))],
)
def test_bad_curves_are_refused(knots: tuple[tuple[float, float], ...]) -> None:
    with pytest.raises(ValueError):
        ScoreCurve(knots)


def test_uncalibrated_classes_keep_their_raw_score() -> None:
    cal = ScoreCalibration.from_knots({"person": [[0.0, 0.0], [0.1, 0.5], [0.3, 0.9]]})
    assert cal("person", 0.1) == pytest.approx(0.5)
    assert cal("stop sign", 0.42) == pytest.approx(0.42)
    # The model must keep raw 0.07 to lose no person calibrated >= 0.35; stop signs need 0.35.
    assert cal.raw_threshold(0.35) == pytest.approx(0.07)


def _det(label: str, score: float, box: tuple[float, float, float, float], **kw: object) -> Detection:
    return Detection(label, 0, score, box, **kw)  # type: ignore[arg-type]


def test_one_person_seen_by_two_models_is_one_detection_with_the_skeleton() -> None:
    keypoints = tuple((100.0 + i, 50.0 + 10 * i, 0.8) for i in range(17))
    coco = calibrated([_det("person", 0.5, (90, 40, 150, 230))], ScoreCalibration(), "nanodet")
    pose = calibrated([_det("person", 0.2, (92, 45, 148, 225), keypoints=keypoints)],
                      ScoreCalibration.from_knots({"person": [[0, 0], [0.1, 0.5], [0.3, 0.9]]}), "movenet")
    assert pose[0].score == pytest.approx(0.7) and pose[0].model == "movenet"
    merged = merge(coco + pose, score_threshold=0.35, iou_threshold=0.5, max_detections=10)
    assert len(merged) == 1
    assert merged[0].model == "movenet" and merged[0].score == pytest.approx(0.7)
    # The COCO box wins when it scores higher, and takes the person model's keypoints.
    coco_strong = [_det("person", 0.8, (90, 40, 150, 230), model="nanodet")]
    merged = merge(coco_strong + pose, 0.35, 0.5, 10)
    assert len(merged) == 1 and merged[0].model == "nanodet" and merged[0].keypoints == keypoints


def test_merge_keeps_separate_people_and_other_classes_and_applies_the_threshold() -> None:
    found = [
        _det("person", 0.6, (0, 0, 50, 100)),
        _det("person", 0.5, (200, 0, 250, 100)),
        _det("stop sign", 0.55, (5, 5, 45, 45)),  # overlaps the first person: another class
        _det("person", 0.3, (400, 0, 450, 100)),  # below the threshold
    ]
    merged = merge(found, 0.35, 0.5, 10)
    assert sorted((d.label, d.score) for d in merged) == [("person", 0.5), ("person", 0.6), ("stop sign", 0.55)]


def test_frame_covering_boxes() -> None:
    assert covers_frame((0, 0, 620, 470), 640, 480, 0.6)
    assert not covers_frame((200, 0, 400, 480), 640, 480, 0.6)  # a person close by: tall, not wide


def test_second_stage_runs_only_on_unresolved_people() -> None:
    from perception.model_set import DetectorModel

    stage = DetectorModel("person", detector=None, second_stage=(0.1, 0.5))  # type: ignore[arg-type]
    sure = _det("person", 0.8, (100, 50, 200, 400))
    part_of_sure = _det("person", 0.3, (110, 60, 190, 200))  # a partial box of the same person
    unsure_elsewhere = _det("person", 0.3, (400, 50, 450, 200))
    assert not stage.wanted([])  # an empty frame: nothing to confirm
    assert not stage.wanted([sure, part_of_sure, _det("chair", 0.3, (0, 0, 50, 50))])
    assert stage.wanted([sure, unsure_elsewhere])
    assert not stage.wanted([_det("person", 0.05, (400, 50, 450, 200))])  # below the band
    assert DetectorModel("every frame", detector=None).wanted([])  # type: ignore[arg-type]


def test_second_stage_speaks_only_about_the_unsure_people() -> None:
    from perception.combine import resolve

    skeleton = tuple((120.0, 60.0 + 10 * i, 0.7) for i in range(17))
    sure = _det("person", 0.8, (100, 50, 200, 400), model="nanodet")
    unsure = _det("person", 0.3, (400, 100, 460, 300), model="nanodet")
    chair = _det("chair", 0.4, (0, 300, 80, 400), model="nanodet")
    stage = [
        _det("person", 0.7, (402, 120, 458, 290), keypoints=skeleton, model="movenet"),  # the unsure one
        _det("person", 0.6, (110, 60, 190, 390), keypoints=skeleton, model="movenet"),  # the sure one again
        _det("person", 0.55, (520, 100, 580, 300), keypoints=skeleton, model="movenet"),  # missed by the first
    ]
    out = resolve([sure, unsure, chair], stage, band=(0.1, 0.5))
    assert len(out) == 4  # no person twice
    # The unsure one: the stage's score and skeleton, the first model's box (it reaches the feet).
    assert out[1].box == unsure.box and out[1].score == 0.7 and out[1].keypoints == skeleton
    assert out[1].model == "movenet"
    # The sure one keeps its score and box and gains the skeleton; the chair is untouched.
    assert out[0].box == sure.box and out[0].score == 0.8 and out[0].keypoints == skeleton
    assert out[2] == chair
    assert out[3].box == (520, 100, 580, 300)  # a person only the stage saw is added
    # A stage that scores the unsure person lower does not lower it (it keeps its skeleton).
    low = resolve([unsure], [_det("person", 0.2, (402, 120, 458, 290), keypoints=skeleton)], band=(0.1, 0.5))
    assert low[0].score == 0.3 and low[0].keypoints == skeleton
