"""The object detector: a TFLite model run by LiteRT (or tflite_runtime), one decoder per format.

`TFLiteDetector.detect(image)` takes a grey (H x W) or BGR (H x W x 3) uint8 image and returns
`Detection`s in that image's pixels. One instance owns one interpreter: use it from one thread
(a lock serialises accidental sharing rather than corrupting the interpreter's buffers).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from perception.config import DEFAULT_MODEL, SHIPPED_MODELS, DetectorConfig, ShippedModel, read_labels
from perception.decoders import DecodeParams, DecoderName, OutputDecoder, RawDetections, select_decoder
from perception.decoders.yolo import BoxFormat
from perception.detection import Detection
from perception.preprocess import ChannelOrder, InputPreprocessor, PixelNormalization
from perception.signature import ModelSignature

log = logging.getLogger(__name__)

__all__ = [
    "Detector",
    "DetectorConfig",
    "ModelIntegrityError",
    "TFLiteDetector",
    "load_interpreter",
]


@runtime_checkable
class Detector(Protocol):
    """Anything that finds objects in an image (grey H x W or BGR H x W x 3, uint8)."""

    def detect(self, image: np.ndarray) -> list[Detection]: ...


class ModelIntegrityError(RuntimeError):
    """The model file's sha256 is not the one expected."""


class NoInterpreterError(ImportError):
    """Neither ai-edge-litert nor tflite-runtime is installed."""


def load_interpreter(model: Path | str | bytes, num_threads: int = 2) -> Any:
    """An allocated TFLite interpreter from `ai_edge_litert`, else `tflite_runtime`.

    `model` is a path or the model's bytes. Both packages ship the same Interpreter API with
    XNNPACK on by default; `num_threads` sets its thread pool.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
        except ImportError as exc:
            raise NoInterpreterError(
                "no TFLite interpreter: install 'ai-edge-litert' (or 'tflite-runtime')"
            ) from exc
    if isinstance(model, bytes):
        interpreter = Interpreter(model_content=model, num_threads=num_threads)
    else:
        interpreter = Interpreter(model_path=str(model), num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter


def _shipped(path: Path) -> ShippedModel | None:
    """The entry of `path` when it is one of the models shipped in perception/models/."""
    entry = SHIPPED_MODELS.get(path.name)
    if entry is None or path.resolve() != (DEFAULT_MODEL.parent / path.name).resolve():
        return None
    return entry


def keypoint_tuples(points: np.ndarray) -> tuple[tuple[float, float, float], ...]:
    """[P, 3] (x, y, score) -> the plain tuples a `Detection` carries."""
    return tuple((float(x), float(y), float(s)) for x, y, s in points)


def _read_verified(path: Path, expected_sha256: str | None) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    data = path.read_bytes()
    if expected_sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256.lower():
            raise ModelIntegrityError(
                f"{path}: sha256 {actual} does not match the expected {expected_sha256}; "
                "the file is damaged or not the model this config names"
            )
    return data


class TFLiteDetector:
    """A TFLite detection model, its decoder and its labels."""

    def __init__(
        self,
        model_path: Path | str = DEFAULT_MODEL,
        labels: Sequence[str] | Path | str | None = None,
        score_threshold: float = 0.35,
        iou_threshold: float = 0.5,
        num_threads: int = 2,
        decoder: DecoderName = "auto",
        *,
        max_detections: int = 100,
        label_offset: int = 0,
        channel_order: ChannelOrder | None = None,
        input_mean: tuple[float, float, float] | None = None,
        input_std: tuple[float, float, float] | None = None,
        yolo_box_format: BoxFormat = "auto",
        expected_sha256: str | None = None,
    ) -> None:
        path = Path(model_path)
        shipped = _shipped(path)
        if shipped is not None:
            expected_sha256 = shipped.sha256
        self.model_path = path
        self.interpreter = load_interpreter(_read_verified(path, expected_sha256), num_threads)
        self.num_threads = num_threads
        self.signature = ModelSignature.from_interpreter(self.interpreter)
        self.decoder: OutputDecoder = select_decoder(self.signature, decoder, yolo_box_format)
        if len(self.signature.inputs) != 1:
            raise ValueError(f"expected one image input, got {self.signature.describe()}")
        fmt = self.decoder.default_normalization
        self.normalization = PixelNormalization(
            channel_order=channel_order or fmt.channel_order,
            mean=input_mean or fmt.mean,
            std=input_std or fmt.std,
        )
        self.preprocessor = InputPreprocessor(self.signature.inputs[0], self.normalization)
        if labels is None and shipped is not None:
            labels = shipped.labels
        if isinstance(labels, (str, Path)):
            labels = read_labels(Path(labels))
        self.labels: list[str] = list(labels) if labels is not None else []
        self.label_offset = label_offset
        w, h = self.preprocessor.size
        self.params = DecodeParams(score_threshold, iou_threshold, max_detections, w, h)
        self._input_index = self.signature.inputs[0].index
        self._lock = threading.Lock()
        # A shipped model with a portrait twin: the same weights at the transposed input, for the
        # images nearer its aspect (front cameras' upright frames, portrait photos).
        self.portrait: TFLiteDetector | None = None
        if shipped is not None and shipped.portrait is not None:
            self.portrait = TFLiteDetector(
                shipped.portrait, self.labels, score_threshold, iou_threshold, num_threads, decoder,
                max_detections=max_detections, label_offset=label_offset, channel_order=channel_order,
                input_mean=input_mean, input_std=input_std, yolo_box_format=yolo_box_format,
            )
        log.info(
            "detector %s: decoder %s, input %dx%d%s, %d threads", path.name, self.decoder.name, w, h,
            f" (portrait {self.portrait.input_size[0]}x{self.portrait.input_size[1]})" if self.portrait else "",
            num_threads,
        )

    @classmethod
    def from_config(cls, cfg: DetectorConfig) -> TFLiteDetector:
        return cls(
            cfg.model_path,
            labels=cfg.labels,
            score_threshold=cfg.score_threshold,
            iou_threshold=cfg.iou_threshold,
            num_threads=cfg.num_threads,
            decoder=cfg.decoder,
            max_detections=cfg.max_detections,
            label_offset=cfg.label_offset,
            channel_order=cfg.channel_order,
            input_mean=cfg.input_mean,
            input_std=cfg.input_std,
            yolo_box_format=cfg.yolo_box_format,
            expected_sha256=cfg.model_sha256,
        )

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input (width, height)."""
        return self.preprocessor.size

    def input_size_for(self, width: int, height: int) -> tuple[int, int]:
        """The input (width, height) an image of this size is run at."""
        return self._sized_for(width, height).input_size

    def _sized_for(self, width: int, height: int) -> TFLiteDetector:
        """This detector, or its portrait twin when the image's aspect is nearer the twin's."""
        if self.portrait is None:
            return self
        aspect = math.log(width / height)
        (w, h), (pw, ph) = self.input_size, self.portrait.input_size
        return self.portrait if abs(aspect - math.log(pw / ph)) < abs(aspect - math.log(w / h)) else self

    @property
    def decoder_name(self) -> str:
        return self.decoder.name

    def label_for(self, class_id: int) -> str:
        i = class_id + self.label_offset
        if 0 <= i < len(self.labels) and self.labels[i]:
            return self.labels[i]
        return f"class_{class_id}"

    def invoke(self) -> None:
        """Run the model on whatever its input holds: the raw inference cost, for benchmarks."""
        with self._lock:
            self.interpreter.invoke()

    def run(self, image: np.ndarray) -> RawDetections:
        """Detections as arrays, boxes in `image` pixels."""
        h, w = image.shape[:2]
        sized = self._sized_for(w, h)
        if sized is not self:
            return sized.run(image)
        with self._lock:
            # Write straight into the interpreter's input buffer; the view must be released
            # before invoke() (the interpreter refuses to run while one is held).
            buffer = self.interpreter.tensor(self._input_index)()
            self.preprocessor.fill(image, buffer)
            del buffer
            self.interpreter.invoke()
            raw = self.decoder.decode(self.read_output, self.params)
        if len(raw) == 0:
            return raw
        sx, sy = w / self.params.input_width, h / self.params.input_height
        boxes = raw.boxes * np.array([sx, sy, sx, sy], np.float32)
        np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
        keypoints = None
        if raw.keypoints is not None:
            keypoints = raw.keypoints * np.array([sx, sy, 1.0], np.float32)  # x, y scaled; score kept
        return RawDetections(boxes, raw.scores, raw.class_ids, keypoints)

    def detect(self, image: np.ndarray) -> list[Detection]:
        raw = self.run(image)
        return [
            Detection(
                label=self.label_for(int(c)),
                class_id=int(c),
                score=float(s),
                box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                keypoints=None if raw.keypoints is None else keypoint_tuples(raw.keypoints[i]),
            )
            for i, (b, s, c) in enumerate(zip(raw.boxes, raw.scores, raw.class_ids))
        ]

    def read_output(self, index: int) -> np.ndarray:
        """A view of an output tensor, valid only until the next invoke() (no copy)."""
        return self.interpreter.tensor(index)()
