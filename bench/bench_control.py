"""Operator command round trip: `stop` request -> stop command sent to the robot, p50 / p95.

    python bench/bench_control.py [--requests 200] [--cameras 2]

In one run on this machine, three processes as in the field:
1. the simulated Spot (a child process: its rendering and gRPC serving are not the agent's);
2. the agent in this process, exactly as `spot-agent run` runs it (cameras streaming, detector
   threads busy, control loop at tick_hz), with operator control on a loopback TCP port. The
   robot seam (`Pipeline.robot`) is wrapped to timestamp each Stop: when the pipeline hands it
   to the robot, and when the robot has accepted it (the RobotCommand RPC returned);
3. an operator process with the `ControlClient` (what `spot-agent op` uses) that, N times,
   launches `hold` (so there is a behavior to stop), waits a little, then sends `stop` and
   waits for the reply.

All timestamps are CLOCK_MONOTONIC (shared by processes on one machine). Printed, p50 / p95:
- request -> Stop handed to the robot seam;
- request -> Stop accepted by the robot (what "command sent" means for Spot);
- request -> reply received by the operator (the full round trip);
and the ratio p95(request -> accepted) / 100 ms: the budget is one control tick at 10 Hz, i.e.
an operator stop must never be slower than waiting for the next tick (target <= 1.0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.config import config_overrides
from agent.core.logs import setup_logging
from agent.demo import sim_agent_config
from agent.run import run_agent
from behaviors.commands import MotionCommand, Stop
from configs import SHIPPED_DIR as CONFIG_DIR

BODY_CAMERAS = ["frontleft_fisheye_image", "frontright_fisheye_image", "left_fisheye_image",
                "right_fisheye_image", "back_fisheye_image"]
BUDGET_S = 0.100

OPERATOR = r"""
import json, sys, time
from agent.control.client import ControlClient
endpoint, count = sys.argv[1], int(sys.argv[2])
samples = []
with ControlClient(endpoint, timeout_s=5.0) as client:
    for i in range(count):
        client.call("launch", {"name": "hold"})
        time.sleep(0.03)
        sent = time.monotonic()
        reply = client.call("stop", {"reason": "bench"})
        samples.append((sent, time.monotonic(), len(reply.value["sent"])))
print(json.dumps(samples))
"""


def _serve_sim(scenario: str, ready: mp.Queue[tuple[int, str, str, str]], stop: Any) -> None:
    from sim.server import SimServer

    with SimServer.start(scenario=scenario, port=0) as sim:
        ready.put((sim.port, str(sim.ca_path), sim.user, sim.password))
        stop.wait()


class TimingRobot:
    """The robot seam, timestamping each Stop: handed over, and accepted by the robot."""

    def __init__(self, robot: Any) -> None:
        self.robot = robot
        self.stops: list[tuple[float, float]] = []

    async def send(self, command: MotionCommand) -> None:
        handed = time.monotonic()
        await self.robot.send(command)
        if isinstance(command, Stop):
            self.stops.append((handed, time.monotonic()))

    async def status(self) -> Any:
        return await self.robot.status()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.robot, name)


def _free_port_pair() -> int:
    while True:
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port


def _percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]  # noqa: E731
    return pick(0.50), pick(0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="stop requests to time")
    parser.add_argument("--cameras", type=int, default=2, choices=range(1, 6), help="body cameras streamed")
    args = parser.parse_args()
    setup_logging("WARNING")

    ready: mp.Queue[tuple[int, str, str, str]] = mp.Queue()
    stop_sim = mp.Event()
    # An empty world: no cue fires, so every Stop the robot gets is an operator's.
    sim_process = mp.Process(
        target=_serve_sim, args=(str(CONFIG_DIR / "scenarios" / "empty.yaml"), ready, stop_sim), daemon=True
    )
    sim_process.start()
    port, ca_path, user, password = ready.get(timeout=60)
    sim = SimpleNamespace(host="127.0.0.1", port=port, ca_path=ca_path, user=user, password=password)
    endpoint = f"tcp://127.0.0.1:{_free_port_pair()}"
    cfg = config_overrides(
        sim_agent_config(sim),
        **{"cameras.sources": BODY_CAMERAS[: args.cameras], "control.enabled": True, "control.endpoint": endpoint},
    )

    robots: list[TimingRobot] = []
    pipelines: list[Any] = []

    def wrap(pipeline: Any) -> None:
        pipeline.robot = TimingRobot(pipeline.robot)
        robots.append(pipeline.robot)
        pipelines.append(pipeline)

    loop = asyncio.new_event_loop()
    outcome: dict[str, Any] = {}

    def agent() -> None:
        try:
            outcome["result"] = loop.run_until_complete(
                run_agent(cfg, stop_on_signals=False, on_pipeline=wrap)
            )
        except BaseException as exc:  # reported below
            outcome["error"] = exc

    agent_thread = threading.Thread(target=agent, name="agent")
    agent_thread.start()
    try:
        from agent.control.client import AgentUnreachable, ControlClient

        deadline = time.monotonic() + 90
        while True:  # until the robot stands and the pipeline is attached
            if "error" in outcome or time.monotonic() > deadline:
                raise SystemExit(f"the agent did not start: {outcome.get('error')}")
            try:
                with ControlClient(endpoint, timeout_s=1.0) as client:
                    reply = client.request("status")
                if reply.ok and (reply.result.get("robot") or {}).get("powered"):
                    break
            except AgentUnreachable:
                pass
            time.sleep(0.2)
        time.sleep(2.0)  # detection reaches its steady state

        print(f"operator: {args.requests} x (launch hold, stop) against {endpoint}; "
              f"agent streaming {args.cameras} camera(s) with {cfg.safety.detect_workers} detector threads")
        operator = subprocess.run(
            [sys.executable, "-c", OPERATOR, endpoint, str(args.requests)],
            capture_output=True, text=True, timeout=600, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        if operator.returncode != 0:
            raise SystemExit(f"operator failed:\n{operator.stderr[-2000:]}")
        samples = json.loads(operator.stdout)
        stats = pipelines[0].stats
    finally:
        if pipelines:
            loop.call_soon_threadsafe(pipelines[0].request_stop)
        agent_thread.join(timeout=60)
        stop_sim.set()
        sim_process.join(timeout=10)

    stops = robots[0].stops
    to_seam, to_robot, round_trip, unmatched = [], [], [], 0
    for sent, replied, n_sent in samples:
        match = next(((h, a) for h, a in stops if sent <= h <= replied), None)
        if match is None or n_sent == 0:
            unmatched += 1
            continue
        to_seam.append(match[0] - sent)
        to_robot.append(match[1] - sent)
        round_trip.append(replied - sent)
    if not to_robot:
        raise SystemExit("no stop reached the robot")

    def show(name: str, values: list[float]) -> float:
        p50, p95 = _percentiles(values)
        print(f"  {name:<40} p50 {p50 * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms")
        return p95

    print(f"\n{len(to_robot)} stops timed ({unmatched} unmatched); "
          f"detector ran at {stats.as_dict(time.time())['detect_fps']:.1f} frames/s meanwhile")
    show("request -> Stop handed to robot seam", to_seam)
    p95 = show("request -> Stop accepted by the robot", to_robot)
    show("request -> reply at the operator", round_trip)
    print(f"\nratio p95(request -> accepted) / {BUDGET_S * 1000:.0f} ms budget: {p95 / BUDGET_S:.2f} "
          f"(target <= 1.0: {'met' if p95 <= BUDGET_S else 'NOT met'})")


if __name__ == "__main__":
    main()
