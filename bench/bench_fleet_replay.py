"""Fleet replay throughput: recordings/minute in this process (1 worker), on a pool of 2
worker processes and on a local Ray cluster (2 CPUs), in one run, as ratios to 1 worker.

One run, same machine, same recordings: `--recordings` MCAP recordings of `--frames` frames
each (two front cameras, scikit-image's photos, as bench_replay.py makes them), replayed frame
by frame with the shipped agent config by each executor in turn, `--rounds` times (the executors
alternate, the median per executor is reported, so other load on the machine hits all alike).
Each timing includes what a user waits for: worker start-up, model loading, every replay. The
per-recording results are checked identical across executors (the fleet's determinism).

    python bench/bench_fleet_replay.py [--recordings 6] [--frames 60] [--rounds 2]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_replay import make_recording

from agent.fleet.executor import InProcessExecutor, PoolExecutor
from agent.fleet.replay_fleet import FleetOptions, run_fleet
from agent.fleet.report import recordings_json


def _run(name: str, paths: list[Path]) -> tuple[float, str]:
    """recordings/minute and the per-recording results of one executor."""
    executor: Any
    ray_address = None
    if name == "1 worker":
        executor = InProcessExecutor()
    elif name == "2 workers":
        executor = PoolExecutor(2, logging.ERROR)
    else:
        from agent.fleet.ray_executor import RayExecutor

        executor, ray_address = RayExecutor("auto"), "auto"
    options = FleetOptions(paths, None, None, "frames", None, None, None, executor.slots, ray_address, None)
    try:
        report = run_fleet(options, executor)
    finally:
        executor.close()
    assert report["totals"]["A"]["replayed"] == len(paths), report["totals"]
    return 60.0 * len(paths) / report["run"]["wall_s"], recordings_json(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=int, default=6)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import ray

    logging.getLogger().setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"robot{i}.mcap" for i in range(args.recordings)]
        for path in paths:
            make_recording(path, args.frames)
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        rates: dict[str, list[float]] = {"1 worker": [], "2 workers": [], "ray local (2 CPUs)": []}
        results: set[str] = set()
        try:
            for _ in range(args.rounds):
                for name in rates:
                    rate, result = _run(name, paths)
                    rates[name].append(rate)
                    results.add(result)
        finally:
            ray.shutdown()
    base = statistics.median(rates["1 worker"])
    print(f"{args.recordings} recordings x {args.frames} frames, median of {args.rounds} rounds")
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:<20} {rate:7.1f} recordings/min   x{rate / base:.2f} of 1 worker")
    print(f"  per-recording results identical across executors: {'yes' if len(results) == 1 else 'NO'}")


if __name__ == "__main__":
    main()
