"""Detector cost on this machine: raw invoke() vs the full per-frame detect, in one run.

    python bench/bench_detector.py [--frames 80]

For 1 and 2 interpreter threads it prints the median time of
- raw `invoke()` of the shipped NanoDet-g model (input already in place), and
- the full per-frame detect: decode a Spot-like 640 x 480 grey JPEG ImageResponse, preprocess
  (resize + normalise into the input tensor), invoke, decode the outputs, NMS, map boxes back,
and their ratio. Target: ratio <= 1.15 (decode + pre/post-processing add at most 15%).

Raw and full runs are interleaved frame by frame so load from other processes on a shared
machine hits both alike. Also printed, for information: the split of the overhead, the
frontleft camera path (rotation fused with the resize), and the AprilTag finder.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bosdyn.api import image_pb2

from perception.config import DetectorConfig
from perception.decode import decode_image_response
from perception.detector import TFLiteDetector
from perception.fiducials import FiducialFinder
from perception.perceiver import Perceiver

TARGET_RATIO = 1.15


def spot_like_response(camera: str = "back_fisheye_image") -> image_pb2.ImageResponse:
    """A 640 x 480 grey JPEG (quality 75, as the agent requests) with a person in view."""
    person = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    image = np.full((480, 640), 90, np.uint8)
    image[:, 80:560] = cv2.resize(person, (480, 480))
    ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert ok
    resp = image_pb2.ImageResponse(status=image_pb2.ImageResponse.STATUS_OK)
    resp.source.name = camera
    img = resp.shot.image
    img.format, img.pixel_format = image_pb2.Image.FORMAT_JPEG, image_pb2.Image.PIXEL_FORMAT_GREYSCALE_U8
    img.rows, img.cols, img.data = 480, 640, jpg.tobytes()
    return resp


def _ms(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000.0


def bench_threads(threads: int, frames: int, resp: image_pb2.ImageResponse) -> dict[str, float]:
    det = TFLiteDetector(num_threads=threads)
    found: list = []

    def full() -> None:
        frame = decode_image_response(resp)
        found[:] = det.detect(frame.image)

    for _ in range(5):  # warm-up: XNNPACK packs weights on the first runs
        full()
        det.invoke()
    raw, whole, dec, pre, post = [], [], [], [], []
    buffer_index = det.signature.inputs[0].index
    for _ in range(frames):
        raw.append(_ms(det.invoke))
        whole.append(_ms(full))
        # The split of the overhead (separately, for information).
        frame_box: list = []
        dec.append(_ms(lambda: frame_box.append(decode_image_response(resp))))

        def prep() -> None:
            buf = det.interpreter.tensor(buffer_index)()
            det.preprocessor.fill(frame_box[0].image, buf)
            del buf

        pre.append(_ms(prep))
        det.invoke()
        post.append(_ms(lambda: det.decoder.decode(det.read_output, det.params)))
    assert found and found[0].label == "person", found
    med = statistics.median
    return {
        "invoke": med(raw), "full": med(whole), "decode": med(dec), "pre": med(pre), "post": med(post),
    }


def bench_extras(frames: int) -> dict[str, float]:
    perceiver = Perceiver(DetectorConfig(num_threads=2, fiducials=False))
    front = spot_like_response("frontleft_fisheye_image")
    finder = FiducialFinder()
    grey = decode_image_response(front).image
    for _ in range(3):
        perceiver.process(decode_image_response(front))
    rot = [_ms(lambda: perceiver.process(decode_image_response(front))) for _ in range(frames // 2)]
    tags = [_ms(lambda: finder.find(grey, None)) for _ in range(frames // 2)]
    return {"frontleft_process": statistics.median(rot), "fiducials": statistics.median(tags)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=80)
    args = parser.parse_args()
    resp = spot_like_response()
    print("NanoDet-g (384x288) on a 640x480 grey JPEG ImageResponse (median of %d frames)" % args.frames)
    print(
        f"{'threads':>7} {'invoke ms':>10} {'detect ms':>10} {'ratio':>6} {'overhead ms':>12}"
        "   split: decode / pre / post ms"
    )
    worst = 0.0
    for threads in (1, 2):
        r = bench_threads(threads, args.frames, resp)
        ratio = r["full"] / r["invoke"]
        worst = max(worst, ratio)
        print(
            f"{threads:>7} {r['invoke']:>10.2f} {r['full']:>10.2f} {ratio:>6.3f} {r['full'] - r['invoke']:>12.2f}"
            f"   {r['decode']:.2f} / {r['pre']:.2f} / {r['post']:.2f}"
        )
    extras = bench_extras(args.frames)
    print(f"frontleft Perceiver.process (decode + rotate-resize + detect + localize, 2 threads): "
          f"{extras['frontleft_process']:.2f} ms")
    print(f"AprilTag finder on the 640x480 grey frame (separate from the detector): {extras['fiducials']:.2f} ms")
    verdict = "meets" if worst <= TARGET_RATIO else "MISSES"
    print(f"worst ratio {worst:.3f} {verdict} the target <= {TARGET_RATIO}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
