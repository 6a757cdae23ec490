"""MoveNet MultiPose (Google): one output [1, N, 56], N = 6 people at most.

Per person, as the model card says and `tests/perception/test_movenet.py` checks on a photo:
17 keypoints x (y, x, score), normalised to the input (0..1), in COCO keypoint order (nose, left
eye, right eye, left ear, right ear, left shoulder, right shoulder, left elbow, right elbow, left
wrist, right wrist, left hip, right hip, left knee, right knee, left ankle, right ankle); then the
person's box ymin, xmin, ymax, xmax (normalised) and its score. The model finds people by
CenterNet peaks, so its slots hold distinct people; per-class NMS still runs so that two slots on
one person (rare, at a crowd's edge) report once, as every other decoder does.

Every detection is class 0 ("person", `perception/models/movenet_labels.txt`) and carries its
keypoints as (x, y, score) in input pixels. Box scores run low (~0.1-0.5 on real people), so a
threshold near 0.1-0.15 is the working point, not the 0.35 box detectors use.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from perception.decoders.base import DecodeParams, OutputReader, RawDetections, nms_keep
from perception.preprocess import PixelNormalization
from perception.signature import ModelSignature, TensorSpec

NUM_KEYPOINTS = 17
_VALUES = NUM_KEYPOINTS * 3 + 5  # 56: keypoints (y, x, score), then ymin, xmin, ymax, xmax, score
COCO_KEYPOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)


def _output(signature: ModelSignature) -> TensorSpec | None:
    if len(signature.inputs) != 1 or len(signature.outputs) != 1:
        return None
    shape = signature.inputs[0].shape
    if len(shape) != 4 or shape[0] != 1 or shape[3] != 3:
        return None
    out = signature.outputs[0]
    if len(out.shape) != 3 or out.shape[0] != 1 or out.shape[2] != _VALUES or out.shape[1] > 100:
        return None
    return out


class MoveNetDecoder:
    name: ClassVar[str] = "movenet"
    # RGB 0..255: the converted model takes uint8 pixels as they are (a float input gets the same).
    default_normalization: ClassVar[PixelNormalization] = PixelNormalization(channel_order="rgb")

    def __init__(self, signature: ModelSignature) -> None:
        output = _output(signature)
        if output is None:
            raise ValueError(f"not a MoveNet MultiPose signature: {signature.describe()}")
        self.output = output

    @classmethod
    def matches(cls, signature: ModelSignature) -> bool:
        return _output(signature) is not None

    @classmethod
    def expects(cls) -> str:
        return "movenet: one [1, H, W, 3] image input, one output [1, N, 56] (MoveNet MultiPose)"

    def decode(self, read: OutputReader, params: DecodeParams) -> RawDetections:
        people = self.output.dequantize(read(self.output.index)[0])  # [N, 56]
        found = np.flatnonzero(people[:, -1] > params.score_threshold)
        if found.size == 0:
            return RawDetections.empty()
        people = people[found]
        w, h = float(params.input_width), float(params.input_height)
        ymin, xmin, ymax, xmax = people[:, -5:-1].T
        boxes = np.stack([xmin * w, ymin * h, xmax * w, ymax * h], axis=1).astype(np.float32)
        np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
        yxs = people[:, : NUM_KEYPOINTS * 3].reshape(-1, NUM_KEYPOINTS, 3)
        keypoints = np.stack([yxs[:, :, 1] * w, yxs[:, :, 0] * h, yxs[:, :, 2]], axis=2).astype(np.float32)
        scores = people[:, -1].astype(np.float32)
        classes = np.zeros(scores.shape, np.int32)
        keep = nms_keep(boxes, scores, classes, params.iou_threshold, params.max_detections)
        return RawDetections(boxes[keep], scores[keep], classes[keep], keypoints[keep])
