"""What every output decoder shares: the result type, the decoder protocol, per-class NMS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

import cv2
import numpy as np

from perception.preprocess import PixelNormalization
from perception.signature import ModelSignature

# Reads one output tensor by interpreter index. Returns a view valid until the next invoke():
# decoders must copy what they keep.
OutputReader = Callable[[int], np.ndarray]


@dataclass(frozen=True)
class DecodeParams:
    score_threshold: float
    iou_threshold: float
    max_detections: int
    input_width: int
    input_height: int


@dataclass(frozen=True)
class RawDetections:
    """Decoded detections in model-input pixels (x1, y1, x2, y2), best score first.

    Pose models add `keypoints`: [K, P, 3] float32 (x, y, score) per detection, in the same
    pixels as the boxes (continuous coordinates: pixel i spans [i, i + 1)).
    """

    boxes: np.ndarray  # [K, 4] float32
    scores: np.ndarray  # [K] float32
    class_ids: np.ndarray  # [K] int32
    keypoints: np.ndarray | None = None  # [K, P, 3] float32, or None for box-only models

    @classmethod
    def empty(cls) -> RawDetections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))

    def __len__(self) -> int:
        return int(self.scores.shape[0])


class OutputDecoder(Protocol):
    """One model output format. `matches` looks only at the signature; `decode` at the outputs."""

    name: ClassVar[str]
    default_normalization: ClassVar[PixelNormalization]

    @classmethod
    def matches(cls, signature: ModelSignature) -> bool: ...

    @classmethod
    def expects(cls) -> str:
        """One line describing the signature this decoder accepts (for error messages)."""
        ...

    def decode(self, read: OutputReader, params: DecodeParams) -> RawDetections: ...


def batched_nms(
    boxes_xyxy: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    iou_threshold: float,
    max_detections: int,
) -> RawDetections:
    """Per-class non-maximum suppression (OpenCV's NMSBoxesBatched), best score first."""
    if scores.size == 0:
        return RawDetections.empty()
    keep = nms_keep(boxes_xyxy, scores, class_ids, iou_threshold, max_detections)
    return RawDetections(
        boxes=boxes_xyxy[keep].astype(np.float32),
        scores=scores[keep].astype(np.float32),
        class_ids=class_ids[keep].astype(np.int32),
    )


def nms_keep(
    boxes_xyxy: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    iou_threshold: float,
    max_detections: int,
) -> np.ndarray:
    """Indices of the boxes per-class NMS keeps, best score first."""
    if scores.size == 0:
        return np.zeros(0, np.int64)
    xywh = np.empty((boxes_xyxy.shape[0], 4), np.float64)
    xywh[:, :2] = boxes_xyxy[:, :2]
    xywh[:, 2:] = boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]
    keep = cv2.dnn.NMSBoxesBatched(
        xywh, scores.astype(np.float32), class_ids.astype(np.int32), 0.0, float(iou_threshold)
    )
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    return keep[np.argsort(-scores[keep], kind="stable")][:max_detections]


def top_candidates(scores: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the `limit` highest scores (all of them when there are fewer)."""
    if scores.size <= limit:
        return np.arange(scores.size)
    return np.argpartition(-scores, limit)[:limit]
