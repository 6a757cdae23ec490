"""The person dev set (tests/fixtures/devset): grey 640 x 480 frames with hand-checked boxes.

`load_devset()` reads `labels.json` (COCO) and returns one `DevImage` per image: its path, its
person boxes to find, and the boxes to ignore (too small or too hidden to expect: a detection
there is neither a hit nor a false positive). See the set's README for sources and rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DEVSET_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "devset"
LABELS = DEVSET_DIR / "labels.json"
PERSON_CATEGORY = 1

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in the 640 x 480 image


@dataclass(frozen=True)
class DevImage:
    path: Path
    width: int
    height: int
    source: str
    variant_of: str | None  # the frame a dimmed variant was made from
    persons: tuple[Box, ...]  # people a detector should find
    ignored: tuple[Box, ...]  # people too small or hidden to expect

    @property
    def is_negative(self) -> bool:
        return not self.persons and not self.ignored

    def grey(self) -> np.ndarray:
        image = cv2.imread(str(self.path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise FileNotFoundError(self.path)
        return image


def load_devset(labels: Path = LABELS) -> list[DevImage]:
    data = json.loads(labels.read_text())
    boxes: dict[int, tuple[list[Box], list[Box]]] = {im["id"]: ([], []) for im in data["images"]}
    for ann in data["annotations"]:
        if ann["category_id"] != PERSON_CATEGORY:
            continue
        x, y, w, h = ann["bbox"]
        keep, ignore = boxes[ann["image_id"]]
        (ignore if ann.get("iscrowd") or ann.get("ignore") else keep).append((x, y, x + w, y + h))
    return [
        DevImage(
            path=labels.parent / im["file_name"],
            width=im["width"],
            height=im["height"],
            source=im["source"],
            variant_of=im.get("variant_of"),
            persons=tuple(boxes[im["id"]][0]),
            ignored=tuple(boxes[im["id"]][1]),
        )
        for im in data["images"]
    ]


def devset_subset(folder: Path, count: int, extra: tuple[str, ...] = ()) -> Path:
    """The first `count` dev-set images with people plus two without (and the `extra` file
    names), as a COCO file in `folder` whose images stay in the dev set (passed with --images)."""
    data = json.loads(LABELS.read_text())
    with_people = sorted({a["image_id"] for a in data["annotations"]})[:count]
    without = [im["id"] for im in data["images"] if im["id"] not in {a["image_id"] for a in data["annotations"]}][:2]
    keep = set(with_people) | set(without) | {im["id"] for im in data["images"] if im["file_name"] in extra}
    data["images"] = [im for im in data["images"] if im["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "subset.json"
    path.write_text(json.dumps(data))
    return path
