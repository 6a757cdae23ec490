"""Person detection on the labelled grey dev set: before/after table, and the score calibration.

    python bench/bench_person_devset.py [--labels tests/fixtures/devset/labels.json] [--write]

1. The COCO detector (NanoDet-g) runs on every dev-set image at a low raw threshold, through the
   perceiver's own path (upright, frame-covering boxes dropped); the person model (MoveNet
   MultiPose) runs as the agent runs it, a second stage on the square around the COCO detector's
   likeliest unsure person, and its own raw boxes there are kept (`Perceiver.detect_by_model`).
2. Calibration: on the *calibration half* of the images (every other image, in file order), each
   model's share of images with a false person box at each raw threshold; the person model's
   curve maps its raw score to NanoDet-g's score with the same share (`perception.calibration`).
   `--write` stores the curves in perception/models/calibration.yaml, the shipped calibration.
3. The table: recall and false-person images of NanoDet alone at the old settings (raw 0.35
   base, 0.45 person rule) and of the shipped perceiver (both models, calibrated, one NMS) at the
   agent's settings, on the *held-out half*, and on all images. A hit is IoU >= 0.5 with a
   labelled person; ignore regions (iscrowd) count neither way.
4. Invoke time of each model, as a ratio to NanoDet-g's, measured in this run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from configs.loading import read_yaml
from perception.calibration import ScoreCalibration, ScoreCurve
from perception.config import SHIPPED_CALIBRATION, SPOT_BODY_CAMERAS, DetectorConfig
from perception.detection import Detection
from perception.detector import TFLiteDetector
from perception.evaluate import (
    ImageOutcome,
    LabelledImage,
    false_image_curve,
    load_coco,
    match,
    operating_point,
)
from perception.frame import Frame
from perception.model_set import DetectorModel
from perception.perceiver import Perceiver

LABELS = ROOT / "tests" / "fixtures" / "devset" / "labels.json"
RULES = ROOT / "configs" / "rules" / "default.yaml"
RAW_GRID = [round(0.05 + 0.025 * i, 3) for i in range(36)]  # 0.05 .. 0.925


def person_rule_threshold() -> float:
    """The shipped person cue's min_score: the agent's setting a person must reach to act on."""
    rules: Any = read_yaml(RULES)
    return float(rules["cues"]["person_close"]["min_score"])


def raw_models(config: DetectorConfig) -> list[DetectorModel]:
    """Each configured model alone, uncalibrated, keeping boxes down to raw 0.05."""
    shipped = Perceiver(config)
    out = []
    for model in shipped.models:
        det = model.detector
        assert isinstance(det, TFLiteDetector)
        raw = TFLiteDetector(det.model_path, labels=det.labels, score_threshold=0.05, num_threads=2,
                             decoder=det.decoder_name, expected_sha256=None)  # type: ignore[arg-type]
        out.append(DetectorModel(model.name, raw, ScoreCalibration()))
    return out


def _upright_front(im: LabelledImage) -> Frame:
    """A dev-set image as a front camera sees it once upright: where the agent runs both models."""
    return Frame(SPOT_BODY_CAMERAS[0], cv2.imread(str(im.file), cv2.IMREAD_GRAYSCALE), 0.0, 0.0)


def detect_all(perceiver: Perceiver, images: list[LabelledImage]) -> list[list[Detection]]:
    return [perceiver.detect_objects(_upright_front(im), rotation_deg=0.0) for im in images]


def detect_each(perceiver: Perceiver, images: list[LabelledImage]) -> list[dict[str, list[Detection]]]:
    """Each model's own detections per image (a second stage's before they are matched)."""
    return [perceiver.detect_by_model(_upright_front(im), rotation_deg=0.0) for im in images]


def outcomes(found: list[list[Detection]], images: list[LabelledImage], label: str = "person") -> list[ImageOutcome]:
    return [
        match([(d.score, d.box) for d in dets if d.label == label], im.boxes.get(label, []), im.ignore.get(label, []))
        for dets, im in zip(found, images)
    ]


def row(name: str, outs: list[ImageOutcome], threshold: float) -> str:
    p = operating_point(outs, threshold)
    return (f"{name:<44} {threshold:>5.2f} {p.recall:>7.2f} ({p.hits}/{p.positives})"
            f" {p.images_with_false:>4}/{p.images:<4} {100 * p.false_image_rate:>5.1f}%"
            f"  neg {p.negative_images_with_false}/{p.negative_images}")


def invoke_ms(model: DetectorModel, n: int = 30) -> float:
    det = model.detector
    assert isinstance(det, TFLiteDetector)
    det.invoke()
    start = time.perf_counter()
    for _ in range(n):
        det.invoke()
    return (time.perf_counter() - start) / n * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--labels", type=Path, default=LABELS)
    ap.add_argument("--write", action="store_true", help="store the fitted curves as the shipped calibration")
    ap.add_argument("--sweep", action="store_true", help="also print calibrated thresholds 0.5-0.95")
    args = ap.parse_args()
    images = sorted(load_coco(args.labels), key=lambda im: im.file.name)
    calib = images[0::2]
    config = DetectorConfig(num_threads=2, fiducials=False)
    models = raw_models(config)
    raw_config = config.model_copy(update={"score_threshold": 0.05})
    # The COCO detector on every image; the person model as the agent runs it: a second stage on
    # the crop around the COCO detector's unsure people (its raw boxes, before the merge).
    raw_found = {models[0].name: detect_all(Perceiver(raw_config, models=models[:1]), images)}
    stage = config.person_model.second_stage if config.person_model is not None else None
    for m in models[1:]:
        staged = Perceiver(raw_config, models=[models[0], dataclasses.replace(m, second_stage=stage)])
        raw_found[m.name] = [by_model.get(m.name, []) for by_model in detect_each(staged, images)]
    # Before this work: NanoDet-g alone, no frame-covering guard.
    unguarded = raw_config.model_copy(update={"max_box_fraction": 1.0})
    old_found = detect_all(Perceiver(unguarded, models=models[:1]), images)
    false_rates = {
        m.name: ScoreCurve(tuple(false_image_curve(
            outcomes([raw_found[m.name][i] for i in range(0, len(images), 2)], calib), RAW_GRID)))
        for m in models
    }
    reference = false_rates[models[0].name]  # the COCO detector's scale is the shared one
    print(f"{models[0].name} (reference): raw -> 1 - false-person image share {reference.knots}")
    curves = {}
    for m in models[1:]:
        curves[m.name] = false_rates[m.name].onto(reference).knots
        print(f"{m.name}: raw -> 1 - false-person image share {false_rates[m.name].knots}")
        print(f"{m.name}: person curve (raw -> calibrated) {curves[m.name]}")
    if args.write:
        write_calibration(models[1:], curves, args.labels, len(calib))
    rule = person_rule_threshold()
    shipped = Perceiver(DetectorConfig(num_threads=2, fiducials=False, score_threshold=0.35))
    after = detect_all(shipped, images)
    nanodet = models[0].name
    print(f"\n{'':<44} {'score':>5} {'recall':>7}        {'false-person images':<22}")
    for split, idx in (("held-out half", range(1, len(images), 2)), ("all", range(len(images)))):
        sub = [images[i] for i in idx]
        print(f"-- {split}: {len(sub)} images, "
              f"{sum(len(im.boxes.get('person', [])) for im in sub)} people, "
              f"{sum(1 for im in sub if not im.boxes.get('person'))} without a person")
        before = outcomes([old_found[i] for i in idx], sub)
        print(row("NanoDet-g alone, old settings: base threshold", before, 0.35))
        print(row("NanoDet-g alone, old settings: person rule", before, 0.45))
        for m in models[1:]:
            print(row(f"{m.name} second stage (raw)", outcomes([raw_found[m.name][i] for i in idx], sub), 0.15))
        now = outcomes([after[i] for i in idx], sub)
        print(row("after: both, calibrated, base threshold", now, shipped.config.score_threshold))
        print(row("after: both, calibrated, person rule", now, rule))
        if args.sweep:
            for t in (0.35, 0.4, 0.45, 0.5, 0.55, 0.6):
                print(row("   sweep: both, calibrated", now, t))
    ms = {m.name: invoke_ms(m) for m in models}
    for m in models:
        print(f"invoke {m.name}: {ms[m.name]:.1f} ms = {ms[m.name] / ms[nanodet]:.2f}x NanoDet-g (2 threads)")


def write_calibration(models: list[DetectorModel], curves: dict[str, tuple[tuple[float, float], ...]],
                      labels: Path, n: int) -> None:
    import hashlib

    entries = {}
    for m in models:
        det = m.detector
        assert isinstance(det, TFLiteDetector)
        entries[det.model_path.name] = {
            "sha256": hashlib.sha256(det.model_path.read_bytes()).hexdigest(),
            "measured_on": f"{labels.relative_to(ROOT) if labels.is_relative_to(ROOT) else labels.name}, "
                           f"calibration half ({n} images)",
            "curves": {"person": [list(k) for k in curves[m.name]]},
        }
    header = ("# Measured score curves of the shipped person model: raw score -> the COCO detector's score that\n"
              "# puts a false person on as many real grey frames (perception/calibration.py). Written by `python bench/bench_person_devset.py --write`.\n")
    SHIPPED_CALIBRATION.write_text(header + yaml.safe_dump({"models": entries}, sort_keys=False), encoding="utf-8")
    print(f"wrote {SHIPPED_CALIBRATION.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
