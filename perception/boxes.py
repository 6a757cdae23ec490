"""Box overlap, the one implementation everything shares (merging, second stage, evaluation).

Boxes are (x1, y1, x2, y2) in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = tuple[float, float, float, float]  # x1, y1, x2, y2


def iou_matrix(a: Sequence[Box], b: Sequence[Box]) -> np.ndarray:
    """len(a) x len(b) intersection over union."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    A, B = np.asarray(a, np.float64)[:, None, :], np.asarray(b, np.float64)[None, :, :]
    iw = np.clip(np.minimum(A[..., 2], B[..., 2]) - np.maximum(A[..., 0], B[..., 0]), 0, None)
    ih = np.clip(np.minimum(A[..., 3], B[..., 3]) - np.maximum(A[..., 1], B[..., 1]), 0, None)
    inter = iw * ih
    area_a = (A[..., 2] - A[..., 0]) * (A[..., 3] - A[..., 1])
    area_b = (B[..., 2] - B[..., 0]) * (B[..., 3] - B[..., 1])
    return np.asarray(inter / np.maximum(area_a + area_b - inter, 1e-9))


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes (0 for empty ones)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def mostly_inside(box: Sequence[float], others: Sequence[Sequence[float]], share: float = 0.5) -> bool:
    """True when at least `share` of `box`'s area lies inside one of `others`."""
    x1, y1, x2, y2 = box
    area = max((x2 - x1) * (y2 - y1), 1e-9)
    for o in others:
        ix = max(0.0, min(x2, o[2]) - max(x1, o[0]))
        iy = max(0.0, min(y2, o[3]) - max(y1, o[1]))
        if ix * iy >= share * area:
            return True
    return False
