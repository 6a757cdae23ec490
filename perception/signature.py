"""A TFLite model's signature: what its input and output tensors look like.

Decoders pick themselves from this (`matches(signature)`), and the detector names it in the
error when no decoder fits, so a user sees what their model actually has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor: index in the interpreter, name, shape, dtype, quantisation."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float = 0.0  # 0.0: not quantised
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        """Real values from this tensor's raw values (float32; a no-op cast for float tensors)."""
        if not self.quantized:
            return values.astype(np.float32, copy=False)
        return (values.astype(np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)

    def quantize_threshold(self, real: float) -> float:
        """The raw-value threshold equivalent to `real` (compare raw values without dequantising)."""
        if not self.quantized:
            return real
        return real / self.scale + self.zero_point

    def describe(self) -> str:
        q = f" q(scale={self.scale:.6g}, zp={self.zero_point})" if self.quantized else ""
        return f"{self.name or '?'} {list(self.shape)} {np.dtype(self.dtype).name}{q}"

    @classmethod
    def from_details(cls, d: dict[str, Any]) -> TensorSpec:
        scale, zero_point = d.get("quantization", (0.0, 0))
        return cls(
            index=int(d["index"]),
            name=str(d.get("name", "")),
            shape=tuple(int(s) for s in d["shape"]),
            dtype=np.dtype(d["dtype"]),
            scale=float(scale),
            zero_point=int(zero_point),
        )


@dataclass(frozen=True)
class ModelSignature:
    """Inputs and outputs of a model, plus the outputs of any TFLite custom post-processing op."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    # Output tensor indices of a TFLite_Detection_PostProcess op, in the op's own order
    # (boxes, classes, scores, count); empty when the model has no such op.
    detection_postprocess_outputs: tuple[int, ...] = field(default=())

    def describe(self) -> str:
        ins = "; ".join(t.describe() for t in self.inputs)
        outs = "; ".join(t.describe() for t in self.outputs)
        extra = " + TFLite_Detection_PostProcess op" if self.detection_postprocess_outputs else ""
        return f"inputs [{ins}], outputs [{outs}]{extra}"

    @classmethod
    def from_interpreter(cls, interpreter: Any) -> ModelSignature:
        inputs = tuple(TensorSpec.from_details(d) for d in interpreter.get_input_details())
        outputs = tuple(TensorSpec.from_details(d) for d in interpreter.get_output_details())
        post: tuple[int, ...] = ()
        # `_get_ops_details` is private but present in both LiteRT and tflite_runtime; it is the
        # only reliable way to tell the op's classes output from its scores output (same shape,
        # and TF2 exports name them StatefulPartitionedCall:N in no fixed order).
        ops_details = getattr(interpreter, "_get_ops_details", None)
        if ops_details is not None:
            try:
                for op in ops_details():
                    if op.get("op_name") == "TFLite_Detection_PostProcess":
                        post = tuple(int(i) for i in op["outputs"])
                        break
            except (RuntimeError, ValueError, KeyError):
                post = ()
        return cls(inputs=inputs, outputs=outputs, detection_postprocess_outputs=post)
