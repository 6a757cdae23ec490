"""Image -> model input tensor, fast.

One `cv2.resize` to the model's input size (plain resize, no letterbox), then one lookup table
per channel that folds the model's normalisation *and* its input quantisation into a single
pass: `raw = quantize((pixel - mean) / std)` is precomputed for all 256 pixel values, so float,
uint8 and int8 inputs cost the same. Grey frames (Spot's body cameras) are resized as one
channel and expanded to three only at the model's size (one lookup plus two affine passes for
float channels-first inputs), never converted to BGR at full size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from perception.signature import TensorSpec

ChannelOrder = Literal["bgr", "rgb"]


@dataclass(frozen=True)
class PixelNormalization:
    """How a model wants pixels: channel order and per-channel mean / std in 0..255 units.

    The model's input is `(pixel - mean) / std` in `channel_order` (mean / std listed in that
    same order), then quantised with the input tensor's own scale / zero-point if it has one.
    """

    channel_order: ChannelOrder
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)


class InputLayoutError(ValueError):
    """The model's input tensor is not an image this preprocessor can fill."""


class InputPreprocessor:
    """Fills a model's image input tensor from a grey (H x W) or BGR (H x W x 3) uint8 image."""

    def __init__(self, tensor: TensorSpec, norm: PixelNormalization) -> None:
        shape = tensor.shape
        if len(shape) != 4 or shape[0] != 1:
            raise InputLayoutError(f"expected a [1, H, W, C] or [1, C, H, W] input, got {list(shape)}")
        if shape[1] in (1, 3) and shape[3] not in (1, 3):
            self.channels_first = True
            self.channels, self.height, self.width = shape[1], shape[2], shape[3]
        elif shape[3] in (1, 3):
            self.channels_first = False
            self.height, self.width, self.channels = shape[1], shape[2], shape[3]
        else:
            raise InputLayoutError(f"input {list(shape)} has no 1- or 3-channel axis")
        self.tensor = tensor
        self.norm = norm
        self._luts = self._build_luts(tensor, norm)
        # Model channel c reads image channel _source[c] of a BGR image.
        self._source = (0, 1, 2) if norm.channel_order == "bgr" else (2, 1, 0)
        self._grey_affine = self._channel_affines() if tensor.dtype == np.float32 else None
        # Channels-last: one 3-channel table, channel c of the table for model channel c (the
        # image is put in the model's channel order first: cv2.LUT cannot reorder channels).
        self._lut3 = np.ascontiguousarray(np.concatenate(self._luts, axis=1)).reshape(256, 1, 3)

    def _channel_affines(self) -> list[tuple[float, float]] | None:
        """Float tables of channels 1, 2 as `a * table0 + b`: a grey image then needs one lookup
        and two cheap affine passes (cv2.addWeighted) instead of three lookups."""
        t0 = self._luts[0].astype(np.float64).ravel()
        if t0[255] == t0[0]:
            return None
        out = []
        for c in (1, 2):
            tc = self._luts[c].astype(np.float64).ravel()
            a = (tc[255] - tc[0]) / (t0[255] - t0[0])
            b = tc[0] - a * t0[0]
            if not np.allclose(a * t0 + b, tc, atol=1e-5):
                return None
            out.append((float(a), float(b)))
        return out

    @property
    def size(self) -> tuple[int, int]:
        """Model input (width, height) in pixels."""
        return self.width, self.height

    @staticmethod
    def _build_luts(tensor: TensorSpec, norm: PixelNormalization) -> list[np.ndarray]:
        pixels = np.arange(256, dtype=np.float64)
        luts: list[np.ndarray] = []
        for c in range(3):
            real = (pixels - norm.mean[c]) / norm.std[c]
            if tensor.quantized:
                info = np.iinfo(tensor.dtype)
                raw = np.clip(np.round(real / tensor.scale + tensor.zero_point), info.min, info.max)
                # cv2.LUT works on uint8 bit patterns; an int8 table is stored as its bytes.
                table = raw.astype(tensor.dtype).view(np.uint8) if tensor.dtype.itemsize == 1 else None
                if table is None:
                    raise InputLayoutError(f"unsupported quantised input dtype {tensor.dtype}")
            elif tensor.dtype == np.float32:
                table = real.astype(np.float32)
            elif tensor.dtype == np.uint8:
                # uint8 without quantisation parameters: the model takes raw pixels, whatever
                # normalisation its format usually has.
                table = pixels.astype(np.uint8)
            else:
                raise InputLayoutError(f"unsupported input dtype {tensor.dtype}")
            luts.append(table.reshape(256, 1))
        return luts

    def fill(self, image: np.ndarray, out: np.ndarray) -> None:
        """Write `image` into `out` (the input tensor's buffer, shape and dtype of the tensor)."""
        if image.dtype != np.uint8:
            raise InputLayoutError(f"expected a uint8 image, got {image.dtype}")
        if image.ndim == 3 and image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        elif image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if image.shape[0] != self.height or image.shape[1] != self.width:
            image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        grey = image.ndim == 2
        # LUT output must be written as bytes for int8 tensors (same bit patterns).
        target = out.view(np.uint8) if out.dtype == np.int8 else out
        if self.channels == 1:
            plane = image if grey else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            dst = target[0, 0] if self.channels_first else target[0, :, :, 0]
            _lut_into(plane, self._luts[0], dst)
        elif self.channels_first and grey and self._grey_affine is not None:
            first = target[0, 0]
            _lut_into(image, self._luts[0], first)
            for c, (a, b) in zip((1, 2), self._grey_affine):
                result = cv2.addWeighted(first, a, first, 0.0, b, dst=target[0, c])
                if not np.shares_memory(result, target):
                    target[0, c] = result
        elif self.channels_first:
            split = None if grey else cv2.split(image)
            for c in range(3):
                plane = image if split is None else split[self._source[c]]
                _lut_into(plane, self._luts[c], target[0, c])
        else:
            if grey:
                ordered = cv2.merge((image, image, image))
            elif self.norm.channel_order == "rgb":
                ordered = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            else:
                ordered = image
            _lut_into(ordered, self._lut3, target[0])


def _lut_into(src: np.ndarray, lut: np.ndarray, dst: np.ndarray) -> None:
    result = cv2.LUT(src, lut, dst=dst)
    if not np.shares_memory(result, dst):  # OpenCV reallocated (layout mismatch): copy over.
        dst[...] = result.reshape(dst.shape)
