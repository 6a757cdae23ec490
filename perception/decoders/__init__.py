"""Output decoders, one per model format. `select_decoder` picks one from a model's signature."""

from __future__ import annotations

from typing import Literal

from perception.decoders.base import DecodeParams, OutputDecoder, RawDetections, batched_nms
from perception.decoders.movenet import MoveNetDecoder
from perception.decoders.nanodet import NanoDetDecoder
from perception.decoders.ssd import SSDPostProcessDecoder
from perception.decoders.yolo import BoxFormat, YoloDecoder
from perception.signature import ModelSignature

DecoderName = Literal["auto", "nanodet", "ssd", "yolo", "movenet"]

# Checked in this order by "auto": the SSD op is unambiguous, NanoDet needs paired outputs,
# MoveNet's [1, N, 56] output is one exact width, and YOLO's single 3-D output is the loosest
# match (it would take MoveNet's [1, 6, 56] for 2 classes over 56 anchors).
DECODERS = {d.name: d for d in (SSDPostProcessDecoder, NanoDetDecoder, MoveNetDecoder, YoloDecoder)}


class UnsupportedModelError(ValueError):
    """The model's signature fits no decoder (or not the one asked for)."""


def select_decoder(
    signature: ModelSignature, name: DecoderName = "auto", yolo_box_format: BoxFormat = "auto"
) -> OutputDecoder:
    candidates = list(DECODERS.values()) if name == "auto" else [DECODERS[name]]
    for cls in candidates:
        if cls.matches(signature):
            if cls is YoloDecoder:
                return YoloDecoder(signature, box_format=yolo_box_format)
            return cls(signature)
    expected = "\n  ".join(c.expects() for c in candidates)
    raise UnsupportedModelError(
        f"model signature fits {'no decoder' if name == 'auto' else f'not the {name!r} decoder'}.\n"
        f"Found: {signature.describe()}\nExpected:\n  {expected}"
    )


__all__ = [
    "DECODERS",
    "DecodeParams",
    "DecoderName",
    "MoveNetDecoder",
    "NanoDetDecoder",
    "OutputDecoder",
    "RawDetections",
    "SSDPostProcessDecoder",
    "UnsupportedModelError",
    "YoloDecoder",
    "batched_nms",
    "select_decoder",
]
