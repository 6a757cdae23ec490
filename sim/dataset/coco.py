"""Write a labelled dataset: upright grey JPEGs in `DIR/images/` and COCO ground truth in
`DIR/labels.json` (the input of `spot-agent eval`).

Images carry `camera` (the Spot image source) and `upright: true` (already turned as the agent
turns that camera); annotations carry `bbox` [x, y, w, h] in the upright image's pixels, `area`,
`iscrowd` (1: an ignore region, too hidden or too small to count either way), `distance_m`,
`truncated`, `occluded` (fraction hidden by nearer objects) and `visible_fraction`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from perception.rotation import upright_rotation
from sim.cameras import CameraSpec
from sim.dataset.truth import ObjectTruth, frame_truth
from sim.dataset.variations import FrameSpec, VariationOptions, frame_spec
from sim.render import render_grey, visible_tags
from sim.scene import Scenario

CATEGORIES = {"person": 1, "stop sign": 13}  # COCO ids
TAG_CATEGORY_BASE = 1000  # AprilTag <id> is category 1000 + id, named "tag:<id>"
JPEG_QUALITY = 85


@dataclass(frozen=True)
class DatasetRequest:
    scenarios: Sequence[Scenario]
    cameras: Sequence[CameraSpec]
    frames: int
    seed: int
    rotation_for: Callable[[str], float]  # camera name -> upright rotation, degrees
    options: VariationOptions = field(default_factory=VariationOptions)


def frame_at(request: DatasetRequest, index: int) -> FrameSpec:
    """Frame `index` of the dataset: the same for the same seed, whatever was generated before."""
    rng = np.random.default_rng([request.seed, index])
    base = request.scenarios[index % len(request.scenarios)]
    camera = request.cameras[index % len(request.cameras)]
    return frame_spec(base, camera, rng, request.options)


def render_frame(spec: FrameSpec, angle_deg: float) -> tuple[np.ndarray, list[ObjectTruth], list[dict]]:
    """(upright grey image, labelled objects, AprilTag annotations) of one frame."""
    camera = spec.camera
    grey = render_grey(camera, spec.odom_tform_body, spec.scenario, spec.t)
    rotation = upright_rotation(angle_deg, camera.width, camera.height)
    truths = frame_truth(camera, spec.odom_tform_body, spec.scenario, spec.t, angle_deg)
    tags = []
    for view in visible_tags(camera, spec.odom_tform_body, spec.scenario, spec.t):
        corners = view.corners_px @ rotation.forward[:, :2].T + rotation.forward[:, 2] + 0.5  # centres -> coords
        x1, y1 = corners.min(axis=0)
        x2, y2 = corners.max(axis=0)
        tags.append({"tag_id": view.tag_id, "box": (float(x1), float(y1), float(x2), float(y2)), "distance_m": view.distance_m})
    return rotation.apply(grey), truths, tags


def _annotation(ann_id: int, image_id: int, category_id: int, box: Sequence[float], **extra: object) -> dict:
    x1, y1, x2, y2 = (round(float(v), 2) for v in box)
    return {
        "id": ann_id, "image_id": image_id, "category_id": category_id,
        "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)], **extra,
    }  # fmt: skip


def frame_annotations(image_id: int, first_id: int, truths: list[ObjectTruth], tags: list[dict]) -> list[dict]:
    anns: list[dict] = []
    for truth in truths:
        anns.append(
            _annotation(
                first_id + len(anns), image_id, CATEGORIES[truth.category], truth.bbox, area=truth.area,
                iscrowd=int(truth.ignore), distance_m=round(truth.distance_m, 3), truncated=truth.truncated,
                occluded=round(truth.occluded, 3), visible_fraction=round(truth.visible_fraction, 3),
            )
        )  # fmt: skip
    for tag in tags:
        x1, y1, x2, y2 = tag["box"]
        anns.append(
            _annotation(
                first_id + len(anns), image_id, TAG_CATEGORY_BASE + tag["tag_id"], tag["box"],
                area=int(round((x2 - x1) * (y2 - y1))), iscrowd=0, distance_m=round(tag["distance_m"], 3),
                truncated=False, occluded=0.0, visible_fraction=1.0,
            )
        )  # fmt: skip
    return anns


def write_dataset(request: DatasetRequest, out: Path, progress: Callable[[int], None] | None = None) -> dict:
    """Render every frame, write the images and `labels.json`; returns the COCO dict."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    images: list[dict] = []
    annotations: list[dict] = []
    tag_ids: set[int] = set()
    for index in range(request.frames):
        spec = frame_at(request, index)
        grey, truths, tags = render_frame(spec, request.rotation_for(spec.camera.name))
        name = f"images/{index:05d}_{spec.camera.name}.jpg"
        if not cv2.imwrite(str(out / name), grey, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f"{out / name}: could not write the image")
        images.append({
            "id": index, "file_name": name, "width": int(grey.shape[1]), "height": int(grey.shape[0]),
            "camera": spec.camera.name, "upright": True, "lighting": spec.scenario.lighting.model_dump(),
        })  # fmt: skip
        annotations += frame_annotations(index, len(annotations) + 1, truths, tags)
        tag_ids.update(tag["tag_id"] for tag in tags)
        if progress is not None:
            progress(index + 1)
    categories = [{"id": cid, "name": name} for name, cid in CATEGORIES.items()]
    categories += [{"id": TAG_CATEGORY_BASE + t, "name": f"tag:{t}"} for t in sorted(tag_ids)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    (out / "labels.json").write_text(json.dumps(coco, indent=1), encoding="utf-8")
    return coco
