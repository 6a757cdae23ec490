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


class Boxed(Protocol):
    """Anything with a label, a score and an x1, y1, x2, y2 box: a Detection, a Sighting, ..."""

    @property
    def label(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def box(self) -> tuple[float, float, float, float]: ...


# RGB, 0..1, one picked per label by a stable hash. The Foxglove live view and recordings
# (`agent.recording.foxglove`) colour by it too, so a class has one colour in every view.
LABEL_PALETTE_RGB: tuple[tuple[float, float, float], ...] = (
    (0.90, 0.10, 0.10),
    (0.10, 0.65, 0.95),
    (0.15, 0.80, 0.25),
    (0.95, 0.70, 0.05),
    (0.70, 0.25, 0.90),
    (0.95, 0.40, 0.70),
    (0.10, 0.85, 0.80),
    (0.95, 0.55, 0.15),
)


def label_rgb(label: str) -> tuple[float, float, float]:
    """The RGB (0..1) colour of a class, from its label alone.

    crc32, not Python's salted `hash`: a label keeps its colour across runs, tools and models
    whose class ids differ.
    """
    return LABEL_PALETTE_RGB[zlib.crc32(label.encode("utf-8")) % len(LABEL_PALETTE_RGB)]


def colour_for(label: str) -> tuple[int, int, int]:
    """`label_rgb` as the BGR 0..255 colour OpenCV draws with."""
    r, g, b = label_rgb(label)
    return round(b * 255), round(g * 255), round(r * 255)


def _to_bgr_copy(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image.copy()


def _line_thickness(image: np.ndarray) -> int:
    return max(2, min(image.shape[:2]) // 300)


def _caption(
    image: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int],
    taken: list[tuple[int, int, int, int]] | None = None,
) -> None:
    """`text` in black on a `colour` band whose bottom-left is (x, y), kept inside the image and
    moved down (into its box) past the captions in `taken` (boxes sharing a corner, a close-up
    and a person inside it, would otherwise print over each other); its band joins `taken`."""
    font_scale = max(0.4, min(image.shape[:2]) / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    height = th + base + 2
    y = max(y, height)
    taken = [] if taken is None else taken
    while y < image.shape[0] and any(_overlap((x, y - height, x + tw + 2, y), t) for t in taken):
        y += height
    band = (x, y - height, x + tw + 2, y)
    taken.append(band)
    cv2.rectangle(image, band[:2], band[2:], colour, cv2.FILLED)
    cv2.putText(image, text, (x + 1, y - base - 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1,
                cv2.LINE_AA)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def draw_detections(image: np.ndarray, detections: Iterable[Boxed], scale: float = 1.0) -> np.ndarray:
    """A BGR copy of `image` (grey, BGR or BGRA) with each box and its "label score" caption.

    `scale` maps box coordinates to this image's pixels: boxes are in the original image, so
    a frame decoded at reduced size (`Frame.image_scale`) passes that scale.
    """
    out = _to_bgr_copy(image)
    thickness = _line_thickness(out)
    captions: list[tuple[int, int, int, int]] = []
    for det in detections:
        colour = colour_for(det.label)
        x1, y1, x2, y2 = (int(round(v * scale)) for v in det.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        _caption(out, f"{det.label} {det.score:.2f}", x1, y1, colour, captions)
        _draw_skeleton(out, getattr(det, "keypoints", None), scale, colour, thickness)
    return out


# COCO keypoint order: 0 nose, 1-2 eyes, 3-4 ears, 5-6 shoulders, 7-8 elbows, 9-10 wrists,
# 11-12 hips, 13-14 knees, 15-16 ankles.
SKELETON: tuple[tuple[int, int], ...] = (
    (5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12), (11, 12),
    (11, 13), (13, 15), (12, 14), (14, 16), (0, 1), (0, 2), (1, 3), (2, 4),
)
KEYPOINT_MIN_SCORE = 0.2  # keypoints scoring less are guesses: not drawn


def _draw_skeleton(
    image: np.ndarray,
    keypoints: Sequence[tuple[float, float, float]] | None,
    scale: float,
    colour: tuple[int, int, int],
    thickness: int,
) -> None:
    if not keypoints:
        return
    pts = [(int(round(x * scale)), int(round(y * scale)), s >= KEYPOINT_MIN_SCORE) for x, y, s in keypoints]
    for a, b in SKELETON:
        if a < len(pts) and b < len(pts) and pts[a][2] and pts[b][2]:
            cv2.line(image, pts[a][:2], pts[b][:2], colour, max(1, thickness // 2))
    for x, y, seen in pts:
        if seen:
            cv2.circle(image, (x, y), thickness + 1, (255, 255, 255), cv2.FILLED)


def annotate(
    image: np.ndarray, detections: Sequence[Detection], fiducials: Sequence[FiducialDetection] = ()
) -> np.ndarray:
    """`draw_detections`, plus each tag as its outlined quad with id (and distance when posed)."""
    out = draw_detections(image, detections)
    thickness = _line_thickness(out)
    for tag in fiducials:
        quad = np.round(tag.corners).astype(np.int32).reshape(-1, 1, 2)
        colour = colour_for(tag.label)
        cv2.polylines(out, [quad], True, colour, thickness)
        text = tag.label + (f" {tag.distance:.2f}m" if tag.has_pose else "")
        _caption(out, text, int(quad[:, 0, 0].min()), int(quad[:, 0, 1].min()), colour)
    return out
