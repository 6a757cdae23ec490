"""Pre-labels as COCO JSON: exported images, the detector's boxes, AprilTags, person keypoints.

CVAT and Label Studio import "COCO 1.0" and map categories by name, and COCO tools (pycocotools,
`spot-agent eval`) by id, so COCO's own labels keep COCO's own ids (person = 1; the 80 detection
classes use the 91-id numbering of the COCO 2017 files). Labels outside COCO (a custom model's)
get ids from 2000 on, AprilTags `tag:<id>` 1000 + id: the same label gets the same id in every
export, so files from two exports can be merged.

Images carry extra fields a labeller ignores and eval reads: `camera` (the source camera),
`upright: true` (the image was turned upright as the agent turns it), `time` (seconds, the
frame's own clock) and `source` (the input's file name, never a path of this machine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perception.annotate import KEYPOINT_MIN_SCORE, SKELETON
from perception.decoders.movenet import COCO_KEYPOINTS
from perception.detection import Detection, FiducialDetection

# (id, name) of the 80 COCO 2017 detection classes, as in instances_*2017.json.
COCO_CATEGORIES: tuple[tuple[int, str], ...] = (
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"),
    (7, "train"), (8, "truck"), (9, "boat"), (10, "traffic light"), (11, "fire hydrant"),
    (13, "stop sign"), (14, "parking meter"), (15, "bench"), (16, "bird"), (17, "cat"),
    (18, "dog"), (19, "horse"), (20, "sheep"), (21, "cow"), (22, "elephant"), (23, "bear"),
    (24, "zebra"), (25, "giraffe"), (27, "backpack"), (28, "umbrella"), (31, "handbag"),
    (32, "tie"), (33, "suitcase"), (34, "frisbee"), (35, "skis"), (36, "snowboard"),
    (37, "sports ball"), (38, "kite"), (39, "baseball bat"), (40, "baseball glove"),
    (41, "skateboard"), (42, "surfboard"), (43, "tennis racket"), (44, "bottle"),
    (46, "wine glass"), (47, "cup"), (48, "fork"), (49, "knife"), (50, "spoon"), (51, "bowl"),
    (52, "banana"), (53, "apple"), (54, "sandwich"), (55, "orange"), (56, "broccoli"),
    (57, "carrot"), (58, "hot dog"), (59, "pizza"), (60, "donut"), (61, "cake"), (62, "chair"),
    (63, "couch"), (64, "potted plant"), (65, "bed"), (67, "dining table"), (70, "toilet"),
    (72, "tv"), (73, "laptop"), (74, "mouse"), (75, "remote"), (76, "keyboard"),
    (77, "cell phone"), (78, "microwave"), (79, "oven"), (80, "toaster"), (81, "sink"),
    (82, "refrigerator"), (84, "book"), (85, "clock"), (86, "vase"), (87, "scissors"),
    (88, "teddy bear"), (89, "hair drier"), (90, "toothbrush"),
)
_COCO_IDS = {name: cid for cid, name in COCO_CATEGORIES}
_SUPERCATEGORY = {"person": "person"}
TAG_CATEGORY_BASE = 1000
OTHER_CATEGORY_BASE = 2000


def category_id(label: str, class_id: int = 0) -> int:
    """COCO's id for a COCO label; 1000 + id for `tag:<id>`; 2000 + the model's class id else."""
    if label in _COCO_IDS:
        return _COCO_IDS[label]
    if label.startswith("tag:") and label[4:].isdigit():
        return TAG_CATEGORY_BASE + int(label[4:])
    return OTHER_CATEGORY_BASE + max(0, class_id)


def _category(cid: int, name: str) -> dict[str, Any]:
    category: dict[str, Any] = {"id": cid, "name": name,
                                "supercategory": _SUPERCATEGORY.get(name, "tag" if name.startswith("tag:") else "object")}
    if name == "person":  # COCO's person category describes its keypoints (skeleton: 1-based)
        category["keypoints"] = list(COCO_KEYPOINTS)
        category["skeleton"] = [[a + 1, b + 1] for a, b in SKELETON]
    return category


def coco_keypoints(keypoints: tuple[tuple[float, float, float], ...]) -> tuple[list[float], int]:
    """COCO's [x1, y1, v1, ...]: v = 2 (labelled, visible) for a point scoring >= 0.2, else
    0 (not labelled, x = y = 0, as COCO writes it); and how many are labelled."""
    flat: list[float] = []
    labelled = 0
    for x, y, score in keypoints:
        if score >= KEYPOINT_MIN_SCORE:
            flat += [round(x, 2), round(y, 2), 2]
            labelled += 1
        else:
            flat += [0, 0, 0]
    return flat, labelled


@dataclass
class CocoLabels:
    """A COCO JSON document being built: one `add_image` per exported frame."""

    images: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    categories: dict[int, dict[str, Any]] = field(default_factory=dict)

    def add_image(
        self, file_name: str, size: tuple[int, int], *, camera: str, time: float, source: str
    ) -> int:
        """A new image entry (`size`: width, height); its id."""
        image_id = len(self.images) + 1
        self.images.append({
            "id": image_id, "file_name": file_name, "width": size[0], "height": size[1],
            "camera": camera, "upright": True, "time": round(time, 6), "source": source,
        })
        return image_id

    def add_box(
        self, image_id: int, label: str, cid: int, box: tuple[float, float, float, float], score: float
    ) -> dict[str, Any]:
        """An annotation for box x1 y1 x2 y2, clipped to its image; the annotation."""
        image = self.images[image_id - 1]
        x1, y1 = min(max(box[0], 0.0), image["width"]), min(max(box[1], 0.0), image["height"])
        x2, y2 = min(max(box[2], x1), image["width"]), min(max(box[3], y1), image["height"])
        if cid not in self.categories:
            self.categories[cid] = _category(cid, label)
        w, h = x2 - x1, y2 - y1
        annotation = {
            "id": len(self.annotations) + 1, "image_id": image_id, "category_id": cid,
            "bbox": [round(x1, 2), round(y1, 2), round(w, 2), round(h, 2)],
            "area": round(w * h, 2), "iscrowd": 0, "score": round(float(score), 4),
        }
        self.annotations.append(annotation)
        return annotation

    def add_detections(
        self, image_id: int, detections: list[Detection], fiducials: list[FiducialDetection]
    ) -> int:
        """The detector's boxes (persons with their keypoints) and each tag's quad bounds; how
        many boxes were added."""
        for d in detections:
            annotation = self.add_box(image_id, d.label, category_id(d.label, d.class_id), d.box, d.score)
            if d.label == "person":  # as COCO's person files: every person, zeros when unseen
                annotation["keypoints"], annotation["num_keypoints"] = coco_keypoints(
                    d.keypoints or ((0.0, 0.0, 0.0),) * len(COCO_KEYPOINTS))
        for tag in fiducials:
            self.add_box(image_id, tag.label, category_id(tag.label), tag.box, 1.0)
        return len(detections) + len(fiducials)

    def to_json(self) -> dict[str, Any]:
        """The document. Categories: all of COCO's (so a labeller can add a box the detector
        missed) and every other label found (tags, a custom model's classes), by id."""
        for cid, name in COCO_CATEGORIES:
            self.categories.setdefault(cid, _category(cid, name))
        return {
            "info": {"description": "spot-agent export-frames: pre-labels by the agent's own perception"},
            "images": self.images,
            "annotations": self.annotations,
            "categories": [self.categories[cid] for cid in sorted(self.categories)],
        }
