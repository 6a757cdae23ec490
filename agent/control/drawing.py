"""Draw detections on a frame and encode it as JPEG (operator snapshots)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import cv2
import numpy as np


class Boxed(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def box(self) -> tuple[float, float, float, float]: ...


def to_bgr(image: np.ndarray, is_depth: bool = False) -> np.ndarray:
    """A displayable 8-bit BGR image from a grey, BGR or depth (metres) frame."""
    if is_depth or image.dtype != np.uint8:
        depth = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        valid = depth > 0
        top = float(np.percentile(depth[valid], 99)) if valid.any() else 1.0
        scaled = np.clip(depth / max(top, 1e-6) * 255.0, 0, 255).astype(np.uint8)
        colored = cv2.applyColorMap(scaled, cv2.COLORMAP_TURBO)
        colored[~valid] = 0
        return colored
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image.copy()


def draw_detections(image: np.ndarray, detections: Iterable[Boxed]) -> np.ndarray:
    """Boxes with "label score" captions, in place on a BGR copy of the image."""
    out = image.copy()
    height = out.shape[0]
    scale = max(0.4, height / 960.0)
    thickness = max(2, int(round(height / 240.0)))
    for det in detections:
        x1, y1, x2, y2 = (int(round(v)) for v in det.box)
        color = (0, 200, 255) if det.label.startswith("tag:") else (0, 255, 0)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
        caption = f"{det.label} {det.score:.2f}"
        (tw, th), baseline = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = max(y1, th + baseline + 2)
        cv2.rectangle(out, (x1, ty - th - baseline - 2), (x1 + tw + 2, ty), color, cv2.FILLED)
        cv2.putText(
            out, caption, (x1 + 1, ty - baseline), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
            cv2.LINE_AA,
        )
    return out


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()


def detection_summary(det: Any) -> dict[str, Any]:
    """The JSON form of a detection or sighting in events and snapshot metadata."""
    out: dict[str, Any] = {
        "label": det.label,
        "score": round(float(det.score), 3),
        "box": [round(float(v), 1) for v in det.box],
    }
    for name in ("camera", "distance_m", "bearing_rad"):
        value = getattr(det, name, None)
        if value is not None:
            out[name] = round(value, 3) if isinstance(value, float) else value
    return out
