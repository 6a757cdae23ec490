"""Pipeline benchmark: throughput vs the detector's own rate, frame ages, cue-to-command latency.

    python bench/bench_pipeline.py [--seconds 20] [--cameras 1 5]

For each camera count, in one run on this machine:
1. A simulated Spot runs in a child process (like a robot: its rendering is not ours), on an
   ephemeral port; the agent connects over TLS gRPC, takes the lease, stands, and streams the
   first N body cameras (frontleft, frontright, left, right, back) with registered depth.
2. Raw rates, measured while those streams run (so the sim and gRPC load is the same): the
   detector threads (`detect_workers`, one perceiver each) process one real frame back to back
   (`Perceiver.process`: detector + fiducials + localisation), then `invoke()` alone.
3. The full pipeline runs for `--seconds` with rules that make a cue fire often: the sim
   teleports the robot to face tag 1, then away, every 0.5 s; each time the tag comes into
   view the `stop` rule fires and the Stop command's latency is measured.

Printed per camera count: frames offered by the cameras, pipeline detected frames/s, the raw
rates, the ratio detected / min(offered, raw process rate) (target >= 0.9: the pipeline keeps the
detector busy whenever there is a new frame, and costs little on top), frame age at detection,
cue-to-command latency (result that raised the cue -> command accepted by the robot) and
capture-to-command latency (camera capture -> command accepted), p50 / p95.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.config import AgentConfig, config_overrides
from agent.core.assembly import build_pipeline
from agent.core.logs import setup_logging
from agent.demo import sim_agent_config
from agent.spot.camera_source import SpotCameraSource
from agent.spot.connect import connect, resolve_credentials
from agent.spot.robot import SpotRobot
from behaviors.config import load_rules
from perception.perceiver import Perceiver

BODY_CAMERAS = [
    "frontleft_fisheye_image",
    "frontright_fisheye_image",
    "left_fisheye_image",
    "right_fisheye_image",
    "back_fisheye_image",
]

SCENARIO = """\
description: "bench: tag 1 ahead at 2.5 m; the bench turns the robot towards it and away"
robot_start: {x: 0.0, y: 0.0, yaw_deg: 0.0}
objects:
  - {type: apriltag, tag_id: 1, size_m: 0.2, pose: {x: 2.5, y: 0.0, z: 0.4, yaw_deg: 180.0}}
  - {type: person, height_m: 1.75, pose: {x: 3.0, y: -1.0, yaw_deg: 90.0}}
"""

RULES = """\
cues:
  tag_in_view:
    label: "tag:1"
    cameras: [frontleft_fisheye_image, frontright_fisheye_image]
    persistence: {seen_in: 1, of_last: 1, clear_after_misses: 2, timeout_s: 0.3}
rules:
  - {name: stop_at_tag, cue: tag_in_view, behavior: stop, priority: 50, cooldown_s: 0}
"""

# The sim in a child process; it reads "teleport x y yaw" lines on stdin.
SIM_CHILD = textwrap.dedent(
    """
    import logging, sys
    logging.disable(logging.WARNING)
    from sim.server import SimServer
    sim = SimServer.start(scenario=sys.argv[1], port=0)
    print(sim.host, sim.port, sim.ca_path, sim.user, sim.password, flush=True)
    for line in sys.stdin:
        words = line.split()
        if words and words[0] == "teleport":
            sim.world.teleport(*map(float, words[1:4]))
    sim.stop()
    """
)


class ChildSim:
    def __init__(self, scenario: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SIM_CHILD, str(scenario)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        host, port, ca, user, password = self.proc.stdout.readline().split()
        self.info = SimpleNamespace(host=host, port=int(port), ca_path=Path(ca), user=user,
                                    password=password)

    def teleport(self, x: float, y: float, yaw: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"teleport {x} {y} {yaw}\n")
        self.proc.stdin.flush()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the sim process has used: it shares the cores with the agent."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class ChildWorker:
    """`spot-agent worker --no-robot` with the sim's detector config, in its own process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "worker", "--no-robot", "--config", "sim", "--host", "127.0.0.1",
             "--port", "0", "--workers", "2", "--stats-interval", "3600"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        self.address = first.split("serving on ", 1)[1].split()[0]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _rate_in_threads(workers: int, seconds: float, make_step: Any) -> float:
    """Calls per second of `step()` with `workers` threads (each with its own step) flat out."""
    steps = [make_step() for _ in range(workers)]
    counts = [0] * workers
    stop = threading.Event()

    def run(i: int) -> None:
        step = steps[i]
        step()  # warm
        while not stop.is_set():
            step()
            counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    base, start = sum(counts), time.perf_counter()
    time.sleep(seconds)
    total, elapsed = sum(counts) - base, time.perf_counter() - start
    stop.set()
    for t in threads:
        t.join()
    return total / elapsed


async def bench_cameras(n: int, seconds: float, workdir: Path, models: str = "both") -> dict[str, Any]:
    scenario = workdir / "scenario.yaml"
    rules_path = workdir / "rules.yaml"
    sim = ChildSim(scenario)
    worker: ChildWorker | None = None
    try:
        cfg: AgentConfig = sim_agent_config(sim.info, rules=rules_path)
        cfg = config_overrides(cfg, **{"cameras.sources": BODY_CAMERAS[:n]})
        if models == "coco":  # the COCO detector alone, as before the person model
            cfg = cfg.model_copy(update={"detector": cfg.detector.model_copy(update={"person_model": None})})
        if models == "ncb":  # both models, on a `spot-agent worker` process on this machine
            worker = ChildWorker()
            cfg = config_overrides(cfg, **{"detector.type": "network_compute_bridge",
                                           "detector.network_compute_bridge.address": worker.address})
        sdk = await asyncio.to_thread(connect, cfg.robot, resolve_credentials(cfg.robot.auth, {}))
        with sdk:
            robot = SpotRobot(sdk, cfg.robot)
            await asyncio.to_thread(robot.start)
            try:
                return await _measure(n, seconds, cfg, sdk, robot, sim, rules_path, worker)
            finally:
                await asyncio.to_thread(robot.close)
                sdk.shutdown()
    finally:
        if worker is not None:
            worker.stop()
        sim.stop()


async def _measure(n: int, seconds: float, cfg: AgentConfig, sdk: Any, robot: SpotRobot,
                   sim: ChildSim, rules_path: Path, worker: ChildWorker | None) -> dict[str, Any]:
    source = SpotCameraSource.for_robot(sdk, cfg.cameras)
    await source.start()  # early, for the raw rates below (the pipeline's start is then a no-op)
    frames = source.frames().__aiter__()
    frame = await frames.__anext__()  # a real frame (with depth) for the raw rates
    workers = cfg.safety.detect_workers

    # Raw rates while the camera streams run (same sim and gRPC load as the pipeline sees).
    def process_step() -> Any:
        perceiver = Perceiver.from_config(cfg.detector)
        return lambda: perceiver.process(frame)

    def invoke_step() -> Any:
        return Perceiver.from_config(cfg.detector).detector.invoke

    raw_process = await asyncio.to_thread(_rate_in_threads, workers, 5.0, process_step)
    # A remote detector has no interpreter here: its invoke rate is its whole round trip.
    raw_invoke = raw_process if worker else await asyncio.to_thread(_rate_in_threads, workers, 3.0, invoke_step)

    before = {c: s["received"] for c, s in source.stats().items()}
    pipeline = build_pipeline(cfg, source, robot, rules=load_rules(rules_path))

    async def toggle() -> None:
        facing = True
        while True:
            await asyncio.sleep(0.5)
            facing = not facing
            await asyncio.to_thread(sim.teleport, 0.0, 0.0, 0.0 if facing else 3.14159)

    toggler = asyncio.create_task(toggle())
    try:
        sim_cpu_before = sim.cpu_seconds()
        agent_cpu_before = time.process_time()  # this process: the agent (cameras, detectors, engine)
        worker_cpu_before = worker.cpu_seconds() if worker else 0.0
        report = await pipeline.run(seconds)
        sim_cores = (sim.cpu_seconds() - sim_cpu_before) / report.stats["elapsed_s"]
        agent_cpu_s = time.process_time() - agent_cpu_before
        worker_cores = (worker.cpu_seconds() - worker_cpu_before) / report.stats["elapsed_s"] if worker else 0.0
    finally:
        toggler.cancel()
    stats = report.stats
    elapsed = stats["elapsed_s"]
    offered = sum(s["received"] - before[c] for c, s in stats["cameras"].items()) / elapsed
    detected = stats["detect_fps"]
    return {
        "cameras": n,
        "min_camera_hz": min(s["detect_fps"] for s in stats["cameras"].values()),
        "camera_hz": {c.split("_")[0]: s["detect_fps"] for c, s in stats["cameras"].items()},
        "sim_cores": sim_cores,
        # CPU per detected frame varies far less with a noisy host than frames per second do.
        "agent_cpu_ms_per_frame": 1000.0 * agent_cpu_s / max(1, stats["detect_fps"] * elapsed),
        "worker_cores": worker_cores,
        "offered_fps": offered,
        "detected_fps": detected,
        "raw_process_fps": raw_process,
        "raw_invoke_fps": raw_invoke,
        "ratio": detected / min(offered, raw_process),
        "ratio_vs_invoke": detected / min(offered, raw_invoke),
        "skipped": sum(s.get("skipped", 0) for s in stats["cameras"].values()),
        "dropped_stale": stats["dropped_stale"],
        "age_at_detection_ms": stats["age_at_detection_ms"],
        "detect_ms": stats["detect_ms"],
        "age_at_result_ms": stats["age_at_result_ms"],
        "cue_to_command_ms": stats["cue_to_command_ms"],
        "capture_to_command_ms": stats["capture_to_command_ms"],
        "watchdog_trips": stats["watchdog_trips"],
    }


def _pp(summary: dict[str, Any]) -> str:
    if not summary or not summary.get("n"):
        return "n/a"
    return f"{summary['p50']:.0f} / {summary['p95']:.0f} ms (n={summary['n']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="pipeline run per camera count")
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 5], choices=range(1, 6))
    parser.add_argument("--models", nargs="+", default=["coco", "both"], choices=["coco", "both", "ncb"],
                        help="coco: the COCO detector alone; both: with the person model (the default config); "
                        "ncb: both, on a `spot-agent worker` process on this machine (detector type network_compute_bridge)")
    args = parser.parse_args()
    setup_logging("ERROR")
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "scenario.yaml").write_text(SCENARIO)
        (workdir / "rules.yaml").write_text(RULES)
        for n, models in ((n, m) for n in args.cameras for m in args.models):
            print(f"\n== {n} camera(s), models: {models}, {args.seconds:.0f} s ...", flush=True)
            r = asyncio.run(bench_cameras(n, args.seconds, workdir, models))
            r["models"] = models
            results.append(r)
            print(f"  camera frames offered     {r['offered_fps']:6.1f} /s (new images, all cameras)")
            print(f"  raw detector, per frame   {r['raw_process_fps']:6.1f} /s (Perceiver.process, "
                  f"detect_workers threads)")
            print(f"  raw detector, invoke only {r['raw_invoke_fps']:6.1f} /s")
            print(f"  pipeline detected         {r['detected_fps']:6.1f} /s  "
                  f"({r['skipped']} skipped as not newest, {r['dropped_stale']} dropped as stale)")
            print(f"  slowest camera detected   {r['min_camera_hz']:6.1f} Hz (target >= 12; "
                  + ", ".join(f"{c} {hz:.1f}" for c, hz in r["camera_hz"].items()) + ")")
            print(f"  agent CPU per frame       {r['agent_cpu_ms_per_frame']:6.1f} ms (all of it: cameras, "
                  f"decode, detectors, engine; 5 cameras at 12 Hz need {0.06 * r['agent_cpu_ms_per_frame']:.2f} cores)")
            print(f"  the sim's own CPU         {r['sim_cores']:6.2f} cores (rendering and serving the "
                  f"cameras; a robot does that itself)")
            print(f"  throughput ratio          {r['ratio']:6.2f}  (detected / min(offered, raw "
                  f"per-frame rate); vs invoke-only rate: {r['ratio_vs_invoke']:.2f}); target >= 0.9")
            print(f"  frame age at detection    {_pp(r['age_at_detection_ms'])}  (p50 / p95)")
            print(f"  detector time per frame   {_pp(r['detect_ms'])}")
            print(f"  cue-to-command latency    {_pp(r['cue_to_command_ms'])}")
            print(f"  capture-to-command        {_pp(r['capture_to_command_ms'])}")
            if models == "ncb":
                print(f"  the worker's own CPU      {r['worker_cores']:6.2f} cores (on the same cores here; "
                      f"a GPU box or the CORE I/O in the field)")
            if r["watchdog_trips"]:
                print(f"  watchdog trips            {r['watchdog_trips']}")
    print("\nsummary: " + "; ".join(
        f"{r['cameras']} cam {r['models']}: slowest camera {r['min_camera_hz']:.1f} Hz, ratio {r['ratio']:.2f}, age p50 {r['age_at_detection_ms']['p50']:.0f} ms, "
        f"cue->cmd p50/p95 {_pp(r['cue_to_command_ms'])}" for r in results))
    for n in sorted({r["cameras"] for r in results}):
        coco = next((r for r in results if r["cameras"] == n and r["models"] == "coco"), None)
        both = next((r for r in results if r["cameras"] == n and r["models"] == "both"), None)
        if coco and both:
            print(f"{n} cam, both models / COCO alone: agent CPU per frame "
                  f"{both['agent_cpu_ms_per_frame'] / coco['agent_cpu_ms_per_frame']:.2f}x, "
                  f"detections/s {both['detected_fps'] / coco['detected_fps']:.2f}x")
    remote = _remote_vs_local(results)
    if remote:
        print(remote)


def _remote_vs_local(results: list[dict[str, Any]]) -> str:
    """NCB against the same models run locally, per camera count, as ratios of this run."""
    lines = []
    for ncb in (r for r in results if r["models"] == "ncb"):
        local = next((r for r in results if r["models"] == "both" and r["cameras"] == ncb["cameras"]), None)
        if local is None:
            continue
        lines.append(
            f"{ncb['cameras']} cam, worker / local: detections/s {ncb['detected_fps'] / local['detected_fps']:.2f}x, "
            f"frame age at result p50 {ncb['age_at_result_ms']['p50'] / local['age_at_result_ms']['p50']:.2f}x "
            f"({ncb['age_at_result_ms']['p50']:.0f} vs {local['age_at_result_ms']['p50']:.0f} ms)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
