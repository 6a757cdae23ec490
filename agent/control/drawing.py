"""Operator snapshots: a displayable frame, its detections drawn, encoded as JPEG.

The boxes are drawn by `perception.annotate.draw_detections` (the one box drawer, so a class
looks the same in snapshots, `spot-agent detect` and replay videos); it is re-exported here so
the snapshot code finds everything it needs in one place.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from perception.annotate import draw_detections

__all__ = ["detection_summary", "draw_detections", "encode_jpeg", "to_bgr"]


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
