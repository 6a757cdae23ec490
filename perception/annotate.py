"""Drawing detections and fiducials on an image (for `spot-agent detect`'s output)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from perception.detection import Detection, FiducialDetection

_TAG_COLOUR = (255, 0, 255)


def _colour(class_id: int) -> tuple[int, int, int]:
    # A stable, distinct colour per class (golden-ratio hue steps).
    hue = int((class_id * 0.618033988749895 % 1.0) * 180)
    bgr = cv2.cvtColor(np.array([[[hue, 200, 255]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def _label(image: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    scale = max(0.4, min(image.shape[:2]) / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    y = max(y, th + base + 2)
    cv2.rectangle(image, (x, y - th - base - 2), (x + tw + 2, y), colour, cv2.FILLED)
    cv2.putText(image, text, (x + 1, y - base - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def annotate(
    image: np.ndarray, detections: Sequence[Detection], fiducials: Sequence[FiducialDetection] = ()
) -> np.ndarray:
    """A BGR copy of `image` with boxes, labels and scores; tags as outlined quads with id."""
    out = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    thickness = max(2, min(out.shape[:2]) // 300)
    for d in detections:
        colour = _colour(d.class_id)
        x1, y1, x2, y2 = (int(round(v)) for v in d.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        _label(out, f"{d.label} {d.score:.2f}", x1, y1, colour)
    for tag in fiducials:
        quad = np.round(tag.corners).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(out, [quad], True, _TAG_COLOUR, thickness)
        text = tag.label + (f" {tag.distance:.2f}m" if tag.has_pose else "")
        _label(out, text, int(quad[:, 0, 0].min()), int(quad[:, 0, 1].min()), _TAG_COLOUR)
    return out
