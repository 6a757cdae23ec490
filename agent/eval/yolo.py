"""A YOLO-format folder as labelled images (Ultralytics, Roboflow, Label Studio, CVAT exports).

Layout: images under a folder named `images` and, for `images/a/b.jpg`, its boxes in
`labels/a/b.txt`, one `class cx cy w h` line a box, normalised to the image (CVAT's YOLO 1.1
keeps the .txt beside the image instead). An image without a .txt has nothing to find. Class
names: `data.yaml`'s `names:` (a list, or a mapping from id), else `classes.txt` / `obj.names`
(one a line), in the folder or its parent (Roboflow keeps data.yaml above the splits).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.eval.dataset import Annotation, DatasetError, EvalImage, image_size

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def load_yolo(folder: Path) -> tuple[list[EvalImage], list[str]]:
    names = class_names(folder)
    pairs = _image_label_pairs(folder)
    if not pairs:
        raise DatasetError(f"{folder}: no images (expected images/ and labels/ folders, or a COCO JSON file)")
    images = []
    for i, (image_file, label_file) in enumerate(pairs):
        width, height = image_size(image_file, str(image_file.relative_to(folder)))
        image = EvalImage(i + 1, image_file, width, height)
        boxes = _read_labels(label_file, folder, names, image) if label_file.is_file() else ()
        images.append(EvalImage(image.id, image_file, width, height, annotations=tuple(boxes)))
    _check_orphans(folder, {label for _, label in pairs})
    return images, names


def class_names(folder: Path) -> list[str]:
    """Class names by id, from data.yaml / classes.txt / obj.names in `folder` or its parent."""
    for where in (folder, folder.parent):
        for yaml_name in ("data.yaml", "dataset.yaml"):
            if (where / yaml_name).is_file():
                return _names_from_yaml(where / yaml_name)
        for text_name in ("classes.txt", "obj.names"):
            if (where / text_name).is_file():
                lines = (where / text_name).read_text(encoding="utf-8").splitlines()
                return [line.strip() for line in lines if line.strip()]
    raise DatasetError(f"{folder}: no class names (data.yaml with names:, classes.txt or obj.names)")


def _names_from_yaml(path: Path) -> list[str]:
    from configs.loading import ConfigError, read_yaml

    try:
        data: Any = read_yaml(path)
    except ConfigError as exc:
        raise DatasetError(str(exc)) from exc
    names = data.get("names") if isinstance(data, dict) else None
    if isinstance(names, dict) and all(isinstance(k, int) for k in names):
        if sorted(names) != list(range(len(names))):
            raise DatasetError(f"{path.name}: names: class ids must be 0..{len(names) - 1}, got {sorted(names)}")
        names = [names[k] for k in range(len(names))]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise DatasetError(f"{path.name}: names: must be a list of class names (or a mapping id: name)")
    return [str(n) for n in names]


def _image_label_pairs(folder: Path) -> list[tuple[Path, Path]]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    pairs = []
    for image in files:
        parts = image.relative_to(folder).parts
        if "images" in parts:
            i = len(parts) - 1 - parts[::-1].index("images")  # the innermost images/ folder
            label = folder.joinpath(*parts[:i], "labels", *parts[i + 1:]).with_suffix(".txt")
        else:
            label = image.with_suffix(".txt")
        pairs.append((image, label))
    return pairs


def _read_labels(path: Path, folder: Path, names: list[str], image: EvalImage) -> list[Annotation]:
    rel = path.relative_to(folder)
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{rel}: line {n}"
        if len(fields) != 5:
            raise DatasetError(f"{where}: {len(fields)} numbers, expected 5 (class cx cy w h); "
                               "polygons and scores are not box labels")
        try:
            cls = int(fields[0])
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError as exc:
            raise DatasetError(f"{where}: not numbers: {line.strip()!r}") from exc
        if not 0 <= cls < len(names):
            raise DatasetError(f"{where}: class {cls} is not one of the {len(names)} class names")
        if w <= 0 or h <= 0 or not all(-0.01 <= v <= 1.01 for v in (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)):
            raise DatasetError(f"{where}: box {line.strip()!r} is not inside the image "
                               "(cx cy w h normalised to 0..1, w and h > 0)")
        box = ((cx - w / 2) * image.width, (cy - h / 2) * image.height,
               (cx + w / 2) * image.width, (cy + h / 2) * image.height)
        out.append(Annotation(names[cls], box))
    return out


def _check_orphans(folder: Path, used: set[Path]) -> None:
    """A label file with no image is a mismatch (a renamed or deleted image): say so."""
    for label in sorted(folder.rglob("*.txt")):
        if "labels" in label.relative_to(folder).parts and label not in used:
            raise DatasetError(f"{label.relative_to(folder)}: no image of that name for these labels")
