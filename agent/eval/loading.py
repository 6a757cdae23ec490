"""Every DATA argument of `spot-agent eval` (COCO JSON files, YOLO folders) as one labelled set."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from agent.eval.dataset import Dataset, DatasetError, EvalImage, load_coco_set
from agent.eval.yolo import load_yolo


def load_dataset(paths: Sequence[Path], images_dir: Path | None = None) -> Dataset:
    """Every DATA argument (COCO JSON files, YOLO folders) as one set, image ids renumbered."""
    images: list[EvalImage] = []
    classes: list[str] = []
    for path in paths:
        if path.is_dir():
            part, names = load_yolo(path)
        elif path.is_file():
            part, names = load_coco_set(path, images_dir)
        else:
            raise DatasetError(f"{path}: no such file or folder")
        classes += [n for n in names if n not in classes]
        images += [_renumbered(im, len(images) + i + 1) for i, im in enumerate(part)]
    if not images:
        raise DatasetError(f"{', '.join(map(str, paths))}: no images")
    present = {a.label for im in images for a in im.annotations if not a.ignore}
    return Dataset([str(p) for p in paths], images, [c for c in classes if c in present])


def _renumbered(image: EvalImage, new_id: int) -> EvalImage:
    return EvalImage(new_id, image.file, image.width, image.height, image.camera, image.upright,
                     image.annotations)
