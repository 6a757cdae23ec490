"""Ultralytics YOLOv8 / YOLO11 TFLite exports: one output [1, 4 + C, N] (cx, cy, w, h then C
class scores per anchor), float or int8 with scale / zero-point.

As Ultralytics' own NMS (multi_label off): each anchor keeps its best class; then per-class NMS.
Ultralytics' TFLite exports give normalised box coordinates (0..1 of the input); older or other
exports give input pixels: `box_format="auto"` tells them apart by magnitude.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from perception.decoders.base import DecodeParams, OutputReader, RawDetections, batched_nms, top_candidates
from perception.preprocess import PixelNormalization
from perception.signature import ModelSignature

BoxFormat = Literal["auto", "normalized", "pixels"]
_MAX_CANDIDATES = 30000  # Ultralytics' max_nms


def _layout(signature: ModelSignature) -> tuple[bool, int] | None:
    """(channels_first, num_classes) of the single output, or None."""
    if len(signature.inputs) != 1 or len(signature.outputs) != 1:
        return None
    shape = signature.outputs[0].shape
    if len(shape) != 3 or shape[0] != 1:
        return None
    a, b = shape[1], shape[2]
    if a >= 5 and a < b:
        return True, a - 4
    if b >= 5 and b < a:
        return False, b - 4
    return None


class YoloDecoder:
    name: ClassVar[str] = "yolo"
    default_normalization: ClassVar[PixelNormalization] = PixelNormalization(
        channel_order="rgb", mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0)
    )

    def __init__(self, signature: ModelSignature, box_format: BoxFormat = "auto") -> None:
        layout = _layout(signature)
        if layout is None:
            raise ValueError(f"not a YOLOv8-style signature: {signature.describe()}")
        self.channels_first, self.num_classes = layout
        self.output = signature.outputs[0]
        self.box_format = box_format

    @classmethod
    def matches(cls, signature: ModelSignature) -> bool:
        return _layout(signature) is not None

    @classmethod
    def expects(cls) -> str:
        return "yolo: one output [1, 4 + C, N] (Ultralytics YOLOv8/YOLO11; [1, N, 4 + C] also accepted)"

    def decode(self, read: OutputReader, params: DecodeParams) -> RawDetections:
        raw = read(self.output.index)[0]
        raw = raw if self.channels_first else raw.T  # [4 + C, N]
        class_raw = raw[4:]
        best_raw = class_raw.max(axis=0)  # quantisation is monotonic: compare raw values
        anchors = np.nonzero(best_raw > self.output.quantize_threshold(params.score_threshold))[0]
        if anchors.size == 0:
            return RawDetections.empty()
        scores = self.output.dequantize(best_raw[anchors])
        keep = top_candidates(scores, _MAX_CANDIDATES)
        anchors, scores = anchors[keep], scores[keep]
        classes = class_raw[:, anchors].argmax(axis=0)
        cxcywh = self.output.dequantize(raw[:4, anchors]).T  # [K, 4]
        if self._normalized(cxcywh):
            cxcywh = cxcywh * np.array([params.input_width, params.input_height] * 2, np.float32)
        half = cxcywh[:, 2:] / 2
        boxes = np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], axis=1)
        np.clip(boxes[:, 0::2], 0, params.input_width, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, params.input_height, out=boxes[:, 1::2])
        return batched_nms(boxes, scores, classes, params.iou_threshold, params.max_detections)

    def _normalized(self, cxcywh: np.ndarray) -> bool:
        if self.box_format != "auto":
            return self.box_format == "normalized"
        # Normalised centres / sizes stay within ~1; pixel ones are far larger on any real input.
        return float(np.abs(cxcywh).max()) <= 2.0
