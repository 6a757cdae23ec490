"""The one box drawer: detections (and fiducials) drawn on an image.

Used by `spot-agent detect`'s annotated images, the operator snapshots (`agent.control`) and
the replay video, so a class looks the same everywhere: a box in the class's colour and a
"label score" caption in black on that colour (readable on dark and bright frames alike).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Protocol

import cv2
import numpy as np

from perception.detection import Detection, FiducialDetection

_TAG_COLOUR = (255, 0, 255)  # every AprilTag alike: magenta, rare in real scenes


class Boxed(Protocol):
    """Anything with a label, a score and an x1, y1, x2, y2 box: a Detection, a Sighting, ..."""

    @property
    def label(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def box(self) -> tuple[float, float, float, float]: ...


def colour_for(label: str) -> tuple[int, int, int]:
    """The BGR colour of a class, from its label alone.

    A stable hash (crc32, not Python's salted `hash`) so a label keeps its colour across runs,
    tools and models whose class ids differ; tags (`tag:<id>`) share one colour.
    """
    if label.startswith("tag:"):
        return _TAG_COLOUR
    degrees = zlib.crc32(label.encode("utf-8")) % 360
    hue = degrees // 2  # OpenCV's 8-bit hue is degrees / 2
    bgr = cv2.cvtColor(np.array([[[hue, 200, 255]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def _to_bgr_copy(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image.copy()


def _line_thickness(image: np.ndarray) -> int:
    return max(2, min(image.shape[:2]) // 300)


def _caption(image: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    """`text` in black on a `colour` band whose bottom-left is (x, y), kept inside the image."""
    font_scale = max(0.4, min(image.shape[:2]) / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    y = max(y, th + base + 2)
    cv2.rectangle(image, (x, y - th - base - 2), (x + tw + 2, y), colour, cv2.FILLED)
    cv2.putText(image, text, (x + 1, y - base - 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1,
                cv2.LINE_AA)


def draw_detections(image: np.ndarray, detections: Iterable[Boxed], scale: float = 1.0) -> np.ndarray:
    """A BGR copy of `image` (grey, BGR or BGRA) with each box and its "label score" caption.

    `scale` maps box coordinates to this image's pixels: boxes are in the original image, so
    a frame decoded at reduced size (`Frame.image_scale`) passes that scale.
    """
    out = _to_bgr_copy(image)
    thickness = _line_thickness(out)
    for det in detections:
        colour = colour_for(det.label)
        x1, y1, x2, y2 = (int(round(v * scale)) for v in det.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        _caption(out, f"{det.label} {det.score:.2f}", x1, y1, colour)
    return out


def annotate(
    image: np.ndarray, detections: Sequence[Detection], fiducials: Sequence[FiducialDetection] = ()
) -> np.ndarray:
    """`draw_detections`, plus each tag as its outlined quad with id (and distance when posed)."""
    out = draw_detections(image, detections)
    thickness = _line_thickness(out)
    for tag in fiducials:
        quad = np.round(tag.corners).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(out, [quad], True, _TAG_COLOUR, thickness)
        text = tag.label + (f" {tag.distance:.2f}m" if tag.has_pose else "")
        _caption(out, text, int(quad[:, 0, 0].min()), int(quad[:, 0, 1].min()), _TAG_COLOUR)
    return out
