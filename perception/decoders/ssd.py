"""SSD exports with the `TFLite_Detection_PostProcess` op (TF Object Detection API, Model Maker
EfficientDet-Lite): four outputs boxes [1, N, 4] (ymin, xmin, ymax, xmax, normalised),
classes [1, N], scores [1, N], count [1].

The op has already decoded anchors and run NMS; this decoder only reads its outputs. Which
output is which comes from the op itself when the interpreter exposes it (TF2 exports name the
outputs `StatefulPartitionedCall:N` in no fixed order, and classes and scores share a shape);
without it, from TF1 names (`TFLite_Detection_PostProcess:1` = classes, `:2` = scores), else
from the op's documented order among the outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from perception.decoders.base import DecodeParams, OutputReader, RawDetections
from perception.preprocess import PixelNormalization
from perception.signature import ModelSignature, TensorSpec


@dataclass(frozen=True)
class _Roles:
    boxes: TensorSpec
    classes: TensorSpec
    scores: TensorSpec
    count: TensorSpec


def _roles(signature: ModelSignature) -> _Roles | None:
    outs = signature.outputs
    if len(outs) != 4:
        return None
    by_index = {t.index: t for t in outs}
    post = signature.detection_postprocess_outputs
    if len(post) == 4 and all(i in by_index for i in post):
        return _Roles(*(by_index[i] for i in post))
    boxes = [t for t in outs if len(t.shape) == 3 and t.shape[0] == 1 and t.shape[2] == 4]
    counts = [t for t in outs if int(np.prod(t.shape)) == 1]
    if len(boxes) != 1 or len(counts) != 1:
        return None
    n = boxes[0].shape[1]
    vectors = [t for t in outs if t.shape in ((1, n),)]
    if len(vectors) != 2:
        return None
    suffix = {t.name.rsplit(":", 1)[-1]: t for t in vectors if t.name.startswith("TFLite_Detection_PostProcess:")}
    if "1" in suffix and "2" in suffix:
        return _Roles(boxes[0], suffix["1"], suffix["2"], counts[0])
    return _Roles(boxes[0], vectors[0], vectors[1], counts[0])


class SSDPostProcessDecoder:
    name: ClassVar[str] = "ssd"
    # MobileNet-SSD / EfficientDet-Lite take RGB in [-1, 1]; uint8 inputs get the same through
    # their quantisation parameters.
    default_normalization: ClassVar[PixelNormalization] = PixelNormalization(
        channel_order="rgb", mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5)
    )

    def __init__(self, signature: ModelSignature) -> None:
        roles = _roles(signature)
        if roles is None:
            raise ValueError(f"not an SSD post-processed signature: {signature.describe()}")
        self.roles = roles

    @classmethod
    def matches(cls, signature: ModelSignature) -> bool:
        return _roles(signature) is not None

    @classmethod
    def expects(cls) -> str:
        return "ssd: TFLite_Detection_PostProcess outputs boxes [1, N, 4], classes [1, N], scores [1, N], count [1]"

    def decode(self, read: OutputReader, params: DecodeParams) -> RawDetections:
        r = self.roles
        n = r.boxes.shape[1]
        count = int(np.clip(np.round(r.count.dequantize(read(r.count.index)).reshape(-1)[0]), 0, n))
        scores = r.scores.dequantize(read(r.scores.index).reshape(-1)[:count])
        keep = np.nonzero(scores >= params.score_threshold)[0][: params.max_detections]
        if keep.size == 0:
            return RawDetections.empty()
        classes = np.round(r.classes.dequantize(read(r.classes.index).reshape(-1)[:count][keep]))
        yxyx = r.boxes.dequantize(read(r.boxes.index)[0][:count][keep])
        yxyx = np.clip(yxyx, 0.0, 1.0)
        scale = np.array([params.input_width, params.input_height] * 2, np.float32)
        boxes = yxyx[:, [1, 0, 3, 2]] * scale
        order = np.argsort(-scores[keep], kind="stable")
        return RawDetections(
            boxes=boxes[order].astype(np.float32),
            scores=scores[keep][order].astype(np.float32),
            class_ids=classes[order].astype(np.int32),
        )
