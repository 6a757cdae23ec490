"""Replay throughput: `spot-agent replay --fast` frames/s versus the detector's raw invoke rate.

One run, same machine, same detector config (configs/agent.yaml unless --config):
1. records a test input: `--frames` grey 640x480 JPEG frames from two front cameras, built
   from scikit-image's bundled photos (a person, a cup, a cameraman...), 15 Hz per camera;
2. measures the raw invoke rate: `interpreter.invoke()` alone in a loop, input already set;
3. replays the recording through the full pipeline (read, decode, rotate, detect, fiducials,
   localise, cue engine, dry-run robot) as fast as it goes (`--fast`);
and prints the ratio replay frames/s / raw invokes/s (target >= 0.9). Steps 2 and 3 alternate
`--rounds` times and the median of the per-round ratios is reported, so load from other
processes affects both sides of each ratio alike. Replay frames/s is the steady rate (first to
last result); the rate counting model loading is printed too.

    python bench/bench_replay.py [--frames 240] [--rounds 5] [--config configs/agent.yaml]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.config import AgentConfig, load_agent_config
from agent.recording.writer import Recorder
from agent.replay.runner import replay
from configs import SHIPPED_DIR as CONFIG_DIR
from perception.detector import TFLiteDetector
from perception.frame import Frame, PinholeIntrinsics

CAMERAS = ["frontleft_fisheye_image", "frontright_fisheye_image"]


def photos() -> list[np.ndarray]:
    from skimage import data

    rgb = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    grey = [cv2.cvtColor(p, cv2.COLOR_RGB2GRAY) for p in rgb] + [data.camera()]
    return [cv2.resize(g, (640, 480)) for g in grey]


def make_recording(path: Path, n_frames: int) -> None:
    pics = photos()
    t0 = 1_700_000_000.0
    with Recorder(path, queue_size=4 * n_frames) as rec:
        for i in range(n_frames):
            camera = CAMERAS[i % 2]
            image = np.roll(pics[(i // 2) % len(pics)], 3 * (i // 2), axis=1)
            ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 75])
            assert ok
            t = t0 + (i // 2) / 15.0 + (i % 2) * 0.004
            frame = Frame(
                camera, cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE), t + 100.0, t,
                intrinsics=PinholeIntrinsics(330.0, 330.0, 320.0, 240.0),
                encoded=jpeg.tobytes(), seq=i,
            )
            assert rec.record_frame(frame)
    stats = rec.stats()
    assert stats.dropped_total == 0, stats


def raw_invoke_rate(config: AgentConfig, seconds: float) -> float:
    detector = TFLiteDetector.from_config(config.detector)
    detector.detect(photos()[0])  # sets the input tensor once
    for _ in range(3):
        detector.invoke()
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        detector.invoke()
        n += 1
    return n / (time.perf_counter() - started)


def perception_rate(config: AgentConfig, workers: int, seconds: float) -> float:
    """Frames/s of the perception alone (detector + rotation + fiducials + localisation) on
    `workers` threads with one single-threaded perceiver each: what replay does per frame,
    without reading, decoding, the cue engine or the pipeline."""
    from perception.perceiver import Perceiver

    cfg = config.detector.model_copy(update={"num_threads": 1})
    pics = photos()
    perceivers = [Perceiver(cfg) for _ in range(workers)]
    counts = [0] * workers
    deadline = time.perf_counter() + seconds

    def work(i: int) -> None:
        k = 0
        while time.perf_counter() < deadline:
            camera = CAMERAS[k % 2]
            frame = Frame(camera, pics[k % len(pics)], 0.0, 0.0,
                          intrinsics=PinholeIntrinsics(330.0, 330.0, 320.0, 240.0), seq=k)
            perceivers[i].process(frame, 0.0)
            counts[i] += 1
            k += 1

    for p in perceivers:  # first inference prepares the kernels
        p.process(Frame(CAMERAS[0], pics[0], 0.0, 0.0), 0.0)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


def replay_rate(path: Path, config: AgentConfig) -> tuple[float, float, int]:
    """(steady frames/s from first to last result, frames/s including start-up, frames)."""
    result = asyncio.run(replay(path, config, mode="frames", speed=None))
    return result.summary.steady_frames_per_s, result.frames_per_s, result.summary.frames_processed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--config", type=Path, default=CONFIG_DIR / "agent.yaml")
    args = parser.parse_args()
    config = load_agent_config(args.config)
    print(
        f"detector: {config.detector.model_path.name}; raw invoke: one interpreter with the "
        f"config's {config.detector.num_threads} thread(s); replay: one single-threaded "
        f"interpreter per core ({os.cpu_count()}), frames processed one at a time in order"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mcap"
        make_recording(path, args.frames)
        invoke_rates, replay_rates, with_startup, ratios, bounds = [], [], [], [], []
        workers = os.cpu_count() or 1
        for r in range(args.rounds):
            invoke = raw_invoke_rate(config, seconds=3.0)
            bound = perception_rate(config, workers, seconds=3.0)
            fps, overall, processed = replay_rate(path, config)
            assert processed == args.frames, (processed, args.frames)
            invoke_rates.append(invoke)
            replay_rates.append(fps)
            with_startup.append(overall)
            ratios.append(fps / invoke)
            bounds.append(fps / bound)
            print(f"round {r + 1}: raw invoke {invoke:6.1f}/s   perception alone {bound:6.1f}/s   "
                  f"replay --fast {fps:6.1f} frames/s ({overall:5.1f} with start-up)   "
                  f"replay/invoke {fps / invoke:.2f}   replay/perception {fps / bound:.2f}")
    # Per-round ratios: the two sides of each ran back to back under the same machine load.
    ratio = statistics.median(ratios)
    print(f"median: raw invoke {statistics.median(invoke_rates):.1f}/s, replay --fast "
          f"{statistics.median(replay_rates):.1f} frames/s ({statistics.median(with_startup):.1f} "
          f"counting model loading; {args.frames} frames, full pipeline)")
    print(f"replay / perception alone = {statistics.median(bounds):.2f} (how much the replay "
          "machinery costs on top of the per-frame perception work)")
    print(f"ratio replay/raw invoke = {ratio:.2f} (median of rounds; target >= 0.9): "
          f"{'OK' if ratio >= 0.9 else 'BELOW TARGET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
