"""Recorder memory over a long five-camera recording: RSS must stay flat after warm-up.

One run, same machine, two child processes one after the other, each recording in real time
for `--minutes` (default 8) what `spot-agent run --record` records from five cameras at 15 Hz:
640x480 grey JPEGs (photos, each frame different) with registered depth (160x120 float32) and a
transforms snapshot, a detection result with a placed sighting per frame, control steps, robot
statuses and commands at 10 Hz:

1. `segments`: the recorder as shipped (256 MiB / 10 min segments, 10 GiB cap);
2. `one-file`: the same with rotation off (one endless file: how recording worked before).

RSS is sampled every 5 s. Reported per mode: data rate (MB/min), RSS at the end of warm-up
(`--warmup` s, default 60), the largest RSS after it, growth (largest - warm-up; target
< 5 MB for `segments`) and the slope after warm-up (MB/min). `--tracemalloc` adds the Python
allocations that grew most after warm-up (the writer's chunk index in `one-file`); tracing and
its snapshot cost memory themselves, so RSS numbers of such a run are not the measurement.

    python bench/bench_recording_memory.py [--minutes 8] [--warmup 60] [--modes segments,one-file]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CAMERAS = ["frontleft_fisheye_image", "frontright_fisheye_image", "left_fisheye_image",
           "right_fisheye_image", "back_fisheye_image"]
FRAME_HZ = 15.0
CONTROL_HZ = 10.0
SAMPLE_S = 5.0


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _inputs() -> tuple[list[bytes], list[Any], list[Any]]:
    """Distinct JPEGs (photos shifted frame by frame), depth images and their decoded size."""
    import cv2
    import numpy as np
    from skimage import data

    rgb = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    photos = [cv2.resize(cv2.cvtColor(p, cv2.COLOR_RGB2GRAY), (640, 480)) for p in rgb]
    jpegs, decoded = [], []
    for i in range(120):
        image = np.roll(photos[i % len(photos)], 7 * i, axis=1)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 75])
        assert ok
        jpegs.append(jpeg.tobytes())
        decoded.append(image)
    # Registered depth as a robot sees a room: a floor ramp and a person-sized blob, with holes.
    rows, cols = np.mgrid[0:120, 0:160].astype(np.float32)
    depths = []
    for i in range(10):
        depth = 1.0 + (120.0 - rows) / 30.0
        blob = (rows - 60) ** 2 / 900 + (cols - 40 - 8 * i) ** 2 / 100 < 1
        depth[blob] = 2.0 + 0.05 * i
        depth[:8, :] = np.nan  # sky: no return
        depths.append(depth.astype(np.float32))
    return jpegs, decoded, depths


def _snapshot(x: float, camera: str) -> Any:
    from bosdyn.api import geometry_pb2

    snap = geometry_pb2.FrameTreeSnapshot()
    snap.child_to_parent_edge_map["body"].parent_frame_name = ""
    odom = snap.child_to_parent_edge_map["odom"]
    odom.parent_frame_name = "body"
    odom.parent_tform_child.position.x = -x
    odom.parent_tform_child.rotation.w = 1.0
    sensor = snap.child_to_parent_edge_map[camera.removesuffix("_image")]
    sensor.parent_frame_name = "body"
    sensor.parent_tform_child.position.x = 0.4
    sensor.parent_tform_child.rotation.w = 1.0
    return snap


def child(mode: str, minutes: float, warmup_s: float, trace: bool, folder: Path) -> None:
    """Record in real time; print one JSON line with the RSS samples."""
    import tracemalloc

    from agent.core.seams import RobotStatus
    from agent.recording.segments import RecordingConfig
    from agent.recording.writer import Recorder
    from behaviors.commands import Velocity
    from perception.detection import FrameResult, Sighting
    from perception.frame import Frame, PinholeIntrinsics

    jpegs, decoded, depths = _inputs()
    limits = RecordingConfig() if mode == "segments" else RecordingConfig(
        max_file_mb=1_000_000, max_file_s=86_400, max_total_mb=2_000_000)
    if trace:
        tracemalloc.start(10)
    recorder = Recorder(folder / "run.mcap", limits=limits)
    intrinsics = PinholeIntrinsics(330.0, 330.0, 320.0, 240.0)
    started = time.monotonic()
    samples: list[tuple[float, float]] = []
    warm_snapshot = None
    next_sample, next_control, n = started, started, 0
    period = 1.0 / FRAME_HZ
    while (now := time.monotonic()) - started < minutes * 60:
        t = time.time()
        for k, camera in enumerate(CAMERAS):
            i = (n * len(CAMERAS) + k) % len(jpegs)
            frame = Frame(
                camera, decoded[i], t + 100.0, t, intrinsics=intrinsics,
                frame_name_image_sensor=camera.removesuffix("_image"),
                transforms_snapshot=_snapshot(0.01 * n, camera), encoded=jpegs[i], seq=n,
                depth_m=depths[i % len(depths)],
            )
            recorder.record_frame(frame)
            sighting = Sighting("person", 0.8, camera, (100.0, 80.0, 200.0, 400.0), (640, 480), t,
                                position_odom=(2.0 + 0.01 * n, 0.3, 0.0), distance_m=2.0)
            recorder.record_observed(FrameResult(camera, n, t + 100.0, t, [sighting]), t + 0.03)
        if now >= next_control:
            next_control += 1.0 / CONTROL_HZ
            recorder.record_step(t + 0.04)
            recorder.record_status(t + 0.04, RobotStatus(True, True, False, True, odom_x=0.01 * n))
            recorder.record_command(t + 0.04, Velocity(0.2, 0.0, 0.1, 0.6))
        if now >= next_sample:
            next_sample += SAMPLE_S
            samples.append((now - started, rss_mb()))
            if trace and warm_snapshot is None and now - started >= warmup_s:
                warm_snapshot = tracemalloc.take_snapshot()
        n += 1
        time.sleep(max(0.0, started + n * period - time.monotonic()))
    grown: list[str] = []
    if trace and warm_snapshot is not None:
        diff = tracemalloc.take_snapshot().compare_to(warm_snapshot, "filename")
        grown = [str(d) for d in diff[:3]]
    stats = recorder.close()
    written_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
    print(json.dumps({
        "mode": mode, "samples": samples, "segments": len(recorder.segments),
        "on_disk_mb": written_mb, "written": stats.written_total, "dropped": stats.dropped_total,
        "grown": grown,
    }))


def summarize(result: dict[str, Any], minutes: float, warmup_s: float) -> dict[str, float]:
    samples = result["samples"]
    warm = [rss for t, rss in samples if t <= warmup_s][-1]
    after = [(t, rss) for t, rss in samples if t > warmup_s]
    xs, ys = [t / 60 for t, _ in after], [rss for _, rss in after]
    slope = statistics.linear_regression(xs, ys).slope if len(after) > 2 else 0.0
    return {"warm_mb": warm, "max_mb": max(ys), "growth_mb": max(ys) - warm,
            "slope_mb_per_min": slope}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=60.0)
    parser.add_argument("--modes", default="segments,one-file")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.minutes, args.warmup, args.tracemalloc, Path(args.folder))
        return
    results = {}
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory(prefix="bench-recording-") as folder:
            done = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--folder", folder,
                 "--minutes", str(args.minutes), "--warmup", str(args.warmup)]
                + (["--tracemalloc"] if args.tracemalloc else []),
                capture_output=True, text=True, check=True,
            )
        result = json.loads(done.stdout.splitlines()[-1])
        summary = summarize(result, args.minutes, args.warmup)
        results[mode] = summary
        rate = result["on_disk_mb"] / args.minutes
        print(f"{mode:9s}: {rate:5.1f} MB/min on disk ({result['segments']} files, "
              f"{result['dropped']} dropped of {result['written'] + result['dropped']}); "
              f"RSS {summary['warm_mb']:.1f} MB after {args.warmup:.0f} s warm-up, max "
              f"{summary['max_mb']:.1f} MB: growth {summary['growth_mb']:+.1f} MB, "
              f"slope {summary['slope_mb_per_min']:+.2f} MB/min")
        for line in result["grown"]:
            print(f"           grew: {line}")
        if args.tracemalloc:
            print("           (RSS includes tracemalloc's own traces and snapshot)")
    if "segments" in results:
        growth = results["segments"]["growth_mb"]
        print(f"segments growth after warm-up: {growth:+.1f} MB "
              f"({'PASS' if growth < 5.0 else 'FAIL'}: target < 5 MB)")
    if {"segments", "one-file"} <= set(results):
        ratio = results["one-file"]["slope_mb_per_min"] / max(
            abs(results["segments"]["slope_mb_per_min"]), 0.01)
        print(f"one-file / segments RSS slope: {ratio:.0f}x")


if __name__ == "__main__":
    main()
