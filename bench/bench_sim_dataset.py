"""Person recall by distance on labelled sim frames (`spot-agent sim dataset`), shipped perceiver.

    python bench/bench_sim_dataset.py [--frames 300] [--seed 0] [--out /tmp/sim-ds]

Builds four sets from the same seed and scenario: the astronaut alone on the scenario's plain
look (`--appearances astronaut --plain`, the sim as it was), the vtest walkers on the plain look,
the astronaut with clutter, walls, floors and dim frames, and every appearance with them. Runs `Perceiver(DetectorConfig())` on each
upright frame as its camera (the person model runs where the agent runs it), matches persons at
IoU 0.5 (`perception.evaluate.match`, iscrowd boxes ignored) and prints recall at the person
rules' min_score 0.5 by distance bucket, and the frames with a false person.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2

from perception.config import DetectorConfig
from perception.evaluate import Box, ImageOutcome, match, operating_point
from perception.frame import Frame
from perception.perceiver import Perceiver
from sim.cameras import CAMERAS
from sim.dataset.coco import DatasetRequest, write_dataset
from sim.dataset.variations import VariationOptions
from sim.scene import PERSON_APPEARANCES, find_scenario, load_scenario

BUCKETS = ((0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0), (8.0, 99.0))
MIN_SCORE = 0.5


FRONT = ("frontleft_fisheye_image", "frontright_fisheye_image")


def evaluate(
    coco: dict, root: Path, perceiver: Perceiver, cameras: tuple[str, ...]
) -> tuple[list[list[ImageOutcome]], list[ImageOutcome]]:
    """(per bucket: one outcome per image, all persons: one outcome per image), `cameras` only."""
    by_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        if ann["category_id"] == 1:
            by_image.setdefault(ann["image_id"], []).append(ann)
    buckets: list[list[ImageOutcome]] = [[] for _ in BUCKETS]
    overall: list[ImageOutcome] = []
    for image in coco["images"]:
        if image["camera"] not in cameras:
            continue
        grey = cv2.imread(str(root / image["file_name"]), cv2.IMREAD_GRAYSCALE)
        found = perceiver.detect_objects(Frame(image["camera"], grey, 0.0, 0.0), rotation_deg=0.0)
        dets = [(d.score, d.box) for d in found if d.label == "person"]
        anns = by_image.get(image["id"], [])

        def box(a: dict) -> Box:
            x, y, w, h = a["bbox"]
            return (x, y, x + w, y + h)

        crowd = [box(a) for a in anns if a["iscrowd"]]
        overall.append(match(dets, [box(a) for a in anns if not a["iscrowd"]], crowd))
        for k, (lo, hi) in enumerate(BUCKETS):
            inside = [a for a in anns if not a["iscrowd"] and lo <= a["distance_m"] < hi]
            others = [box(a) for a in anns if a not in inside]
            buckets[k].append(match(dets, [box(a) for a in inside], others))
    return buckets, overall


def report(name: str, buckets: list[list[ImageOutcome]], overall: list[ImageOutcome]) -> dict:
    row: dict[str, object] = {"set": name}
    for (lo, hi), outs in zip(BUCKETS, buckets):
        p = operating_point(outs, MIN_SCORE)
        row[f"{lo:g}-{hi:g} m" if hi < 99 else f"{lo:g}+ m"] = f"{p.recall:.2f} ({p.hits}/{p.positives})"
    p = operating_point(overall, MIN_SCORE)
    row["all"] = f"{p.recall:.2f} ({p.hits}/{p.positives})"
    row["false-person frames"] = f"{p.images_with_false}/{p.images} ({100 * p.false_image_rate:.1f}%)"
    row["false-person frames without a person"] = f"{p.negative_images_with_false}/{p.negative_images}"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--out", type=Path, default=Path("/tmp/sim-dataset-bench"))
    args = parser.parse_args()
    config = DetectorConfig()
    scenarios = [load_scenario(find_scenario(args.scenario))]
    walkers = tuple(a for a in PERSON_APPEARANCES if a != "astronaut")
    sets = {
        "astronaut, plain": VariationOptions(appearances=("astronaut",), clutter=False, dim_fraction=0.0),
        "walkers, plain": VariationOptions(appearances=walkers, clutter=False, dim_fraction=0.0),
        "astronaut, clutter + dim": VariationOptions(appearances=("astronaut",)),
        "all appearances, clutter + dim": VariationOptions(),
    }
    perceiver = Perceiver(config)
    rows = []
    for name, options in sets.items():
        out = args.out / name.replace(", ", "-").replace(" + ", "_").replace(" ", "_")
        request = DatasetRequest(scenarios, list(CAMERAS.values()), args.frames, args.seed, config.rotation_for, options)
        coco = write_dataset(request, out)
        for group, cameras in (("front pair", FRONT), ("side + back", tuple(c for c in CAMERAS if c not in FRONT))):
            rows.append(report(f"{name} / {group}", *evaluate(coco, out, perceiver, cameras)))
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
