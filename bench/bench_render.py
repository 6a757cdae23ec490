"""Simulated camera rendering cost on this machine.

    python bench/bench_render.py [--frames 60] [--scenario configs/scenarios/default.yaml]

For each of the five body cameras it renders the scenario's world (with a walking person, so
frames differ) and prints the median and best time of `render_grey`, `render_depth` and
`visible_tags`, as wall time and as this thread's CPU time (CPU time is what the render costs;
wall time also counts waiting for other processes on a shared machine).

Budget: the sim serves 5 cameras at 15 Hz on a 2-core machine that also runs a detector, so one
grey render should stay well under 5 ms. Printed: ratio = median CPU time / 5 ms (target < 1).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bosdyn.client.math_helpers import Quat, SE3Pose

from sim.cameras import CAMERAS
from sim.render import render_depth, render_grey, visible_tags
from sim.scene import default_scenario_path, load_scenario

BUDGET_MS = 5.0


def _time(fn: Callable[[float], object], frames: int) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for i in range(frames):
        t = 0.1 * i
        w0, c0 = time.perf_counter(), time.thread_time()
        fn(t)
        cpu.append((time.thread_time() - c0) * 1e3)
        wall.append((time.perf_counter() - w0) * 1e3)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--scenario", type=Path, default=default_scenario_path())
    args = parser.parse_args()

    scenario = load_scenario(args.scenario)
    start = scenario.robot_start
    body = SE3Pose(start.x, start.y, 0.5, Quat.from_yaw(start.yaw))
    worst_ratio = 0.0
    print(f"scenario {args.scenario}, {args.frames} frames per camera; times in ms (median / best)")
    print(f"{'camera':26s} {'grey wall':>12s} {'grey cpu':>12s} {'depth cpu':>12s} {'tags cpu':>12s} {'ratio':>6s}")
    for camera in CAMERAS.values():
        for fn in (render_grey, render_depth, visible_tags):  # warm-up: textures, caches
            fn(camera, body, scenario, 0.0)
        grey_wall, grey_cpu = _time(lambda t: render_grey(camera, body, scenario, t), args.frames)
        _, depth_cpu = _time(lambda t: render_depth(camera, body, scenario, t), args.frames)
        _, tags_cpu = _time(lambda t: visible_tags(camera, body, scenario, t), args.frames)
        ratio = statistics.median(grey_cpu) / BUDGET_MS
        worst_ratio = max(worst_ratio, ratio)

        def fmt(xs: list[float]) -> str:
            return f"{statistics.median(xs):5.2f}/{min(xs):5.2f}"

        cells = (fmt(grey_wall), fmt(grey_cpu), fmt(depth_cpu), fmt(tags_cpu))
        print(f"{camera.name:26s} " + " ".join(f"{c:>12s}" for c in cells) + f" {ratio:6.2f}")
    print(f"worst ratio (median grey CPU ms / {BUDGET_MS} ms budget): {worst_ratio:.2f}  (target < 1)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
