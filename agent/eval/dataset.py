"""Labelled images as plain data, read from COCO JSON (CVAT, Label Studio, Roboflow exports).

The dataset contract (the frame exporter and the sim set write it): an image entry may carry
`camera` (the Spot image source that took it: it decides which models run; default
`frontleft_fisheye_image`) and `upright` (default true: already upright, run with rotation 0;
false: turned as the agent turns that camera). An annotation may carry `distance_m`,
`truncated`, `occluded`, and `iscrowd: 1` / `ignore: 1` for regions that count neither way.

Every check names the file and the entry (`labels.json: annotations[12].bbox: ...`): a label
file that does not match its images is an error, never a silently wrong number.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CAMERA = "frontleft_fisheye_image"
# Boxes may overhang the image by this much (rounding in exporters), no more.
EDGE_SLACK = 0.01


class DatasetError(Exception):
    """Bad or mismatched labels: the message names the file and the entry."""


@dataclass(frozen=True)
class Annotation:
    label: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in image pixels
    ignore: bool = False  # iscrowd / ignore: a region where detections count neither way
    distance_m: float | None = None
    truncated: bool | None = None
    occluded: bool | None = None
    labelled_area: float | None = None  # the file's `area` (e.g. a mask's pixels), if it gives one

    @property
    def area(self) -> float:
        """The file's `area` when it has one (as pycocotools reads it: COCO's size ranges are by
        area), else the box's."""
        if self.labelled_area is not None:
            return self.labelled_area
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])


@dataclass(frozen=True)
class EvalImage:
    id: int
    file: Path
    width: int
    height: int
    camera: str = DEFAULT_CAMERA
    upright: bool = True
    annotations: tuple[Annotation, ...] = ()


@dataclass
class Dataset:
    sources: list[str]
    images: list[EvalImage]
    classes: list[str]  # category names with at least one box to find, in category order
    notes: list[str] = field(default_factory=list)

    @property
    def annotation_count(self) -> int:
        return sum(1 for im in self.images for a in im.annotations if not a.ignore)

    @property
    def ignored_count(self) -> int:
        return sum(1 for im in self.images for a in im.annotations if a.ignore)


def load_coco_set(path: Path, images_dir: Path | None = None) -> tuple[list[EvalImage], list[str]]:
    """Images and category names of one COCO JSON file; `DatasetError` naming the entry."""
    name = path.name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DatasetError(f"{name}: not a COCO file (expected an object with images, annotations, categories)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{name}: '{key}' must be a list (a COCO file has images, annotations, categories)")
    categories = _categories(name, data["categories"])
    base = images_dir if images_dir is not None else path.parent
    images = {im.id: im for im in (_image(name, i, e, base) for i, e in enumerate(data["images"]))}
    if len(images) != len(data["images"]):
        raise DatasetError(f"{name}: images: image ids are not unique")
    boxes: dict[int, list[Annotation]] = {i: [] for i in images}
    for i, entry in enumerate(data["annotations"]):
        image_id, annotation = _annotation(f"{name}: annotations[{i}]", entry, categories, images)
        boxes[image_id].append(annotation)
    out = [_with(im, boxes[im.id]) for im in images.values()]
    return sorted(out, key=lambda im: im.id), list(categories.values())


def _with(image: EvalImage, annotations: list[Annotation]) -> EvalImage:
    return EvalImage(image.id, image.file, image.width, image.height, image.camera, image.upright,
                     tuple(annotations))


def _categories(name: str, entries: list[Any]) -> dict[int, str]:
    out: dict[int, str] = {}
    for i, c in enumerate(entries):
        where = f"{name}: categories[{i}]"
        if not isinstance(c, dict) or not _is_int(c.get("id")):
            raise DatasetError(f"{where}.id: must be an integer")
        if not isinstance(c.get("name"), str) or not c["name"].strip():
            raise DatasetError(f"{where}.name: must be a non-empty string")
        if c["id"] in out or c["name"].strip() in out.values():
            raise DatasetError(f"{where}: id {c['id']} or name {c['name']!r} appears twice")
        out[c["id"]] = c["name"].strip()
    return out


def _image(name: str, index: int, e: Any, base: Path) -> EvalImage:
    where = f"{name}: images[{index}]"
    if not isinstance(e, dict) or not _is_int(e.get("id")):
        raise DatasetError(f"{where}.id: must be an integer")
    if not isinstance(e.get("file_name"), str) or not e["file_name"]:
        raise DatasetError(f"{where}.file_name: must be a file name")
    file = base / e["file_name"]
    camera = e.get("camera", DEFAULT_CAMERA)
    if not isinstance(camera, str) or not camera:
        raise DatasetError(f"{where}.camera: must be a Spot image source name, got {camera!r}")
    upright = e.get("upright", True)
    if not isinstance(upright, bool):
        raise DatasetError(f"{where}.upright: must be true or false, got {upright!r}")
    width, height = image_size(file, where)
    for key, actual in (("width", width), ("height", height)):
        if key in e and e[key] != actual:
            raise DatasetError(f"{where}.{key}: {e[key]!r}, but {e['file_name']} is {width}x{height}")
    return EvalImage(e["id"], file, width, height, camera, upright)


def image_size(file: Path, where: str) -> tuple[int, int]:
    """The image's (width, height) from its header; `DatasetError` if it is missing or unreadable."""
    from PIL import Image, UnidentifiedImageError

    if not file.is_file():
        raise DatasetError(f"{where}: image file {file} does not exist")
    try:
        with Image.open(file) as im:
            return im.size
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetError(f"{where}: {file} is not a readable image ({exc})") from exc


def _annotation(
    where: str, e: Any, categories: dict[int, str], images: dict[int, EvalImage]
) -> tuple[int, Annotation]:
    if not isinstance(e, dict):
        raise DatasetError(f"{where}: must be an object")
    if e.get("image_id") not in images:
        raise DatasetError(f"{where}.image_id: {e.get('image_id')!r} is not an image id of this file")
    if e.get("category_id") not in categories:
        raise DatasetError(f"{where}.category_id: {e.get('category_id')!r} is not a category id of this file")
    image = images[e["image_id"]]
    box = check_box(f"{where}.bbox", e.get("bbox"), image)
    distance = e.get("distance_m")
    if distance is not None and (not _is_number(distance) or distance < 0):
        raise DatasetError(f"{where}.distance_m: must be a number of metres >= 0, got {distance!r}")
    flags = {}
    attributes: dict[str, Any] = e["attributes"] if isinstance(e.get("attributes"), dict) else {}
    for key in ("truncated", "occluded"):
        value: Any = e.get(key, attributes.get(key))  # CVAT keeps `occluded` under `attributes`
        if _is_number(value) and 0.0 <= value <= 1.0:  # a hidden/cut fraction (the sim's)
            value = value >= OCCLUDED_FRACTION
        if value is not None and not isinstance(value, bool):
            raise DatasetError(f"{where}.{key}: must be true or false, or a fraction 0-1, got {value!r}")
        flags[key] = value
    for key in ("iscrowd", "ignore"):
        if e.get(key, 0) not in (0, 1):  # True/False compare equal to 1/0
            raise DatasetError(f"{where}.{key}: must be 0 or 1, got {e[key]!r}")
    ignore = bool(e.get("iscrowd", 0) or e.get("ignore", 0))
    label = categories[e["category_id"]]
    area = e.get("area")
    if area is not None and (not _is_number(area) or area < 0):
        raise DatasetError(f"{where}.area: must be a number of pixels >= 0, got {area!r}")
    return image.id, Annotation(label, box, ignore, None if distance is None else float(distance),
                                flags["truncated"], flags["occluded"], None if area is None else float(area))


# A box with at least this fraction hidden (or cut by the frame) counts as occluded (truncated).
OCCLUDED_FRACTION = 0.3


def check_box(where: str, bbox: Any, image: EvalImage) -> tuple[float, float, float, float]:
    """A COCO `[x, y, w, h]` as (x1, y1, x2, y2), checked against the image it belongs to."""
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_is_number(v) for v in bbox):
        raise DatasetError(f"{where}: must be [x, y, width, height] (4 numbers), got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        raise DatasetError(f"{where}: width and height must be > 0, got {bbox!r}")
    sx, sy = image.width * EDGE_SLACK + 1, image.height * EDGE_SLACK + 1
    if x < -sx or y < -sy or x + w > image.width + sx or y + h > image.height + sy:
        raise DatasetError(f"{where}: {bbox!r} lies outside the {image.width}x{image.height} image "
                           f"{image.file.name} (labels for another image size?)")
    return (x, y, x + w, y + h)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
