"""The whole agent against the simulated Spot over real TLS gRPC, with the real detector.

Each test starts a sim on an ephemeral port, runs `agent.run.run_agent` with configs/sim.yaml
(exactly what `spot-agent run` / `demo` run) and watches the sim's ground truth (body pose and
speed, people's positions) while the agent works.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from bosdyn.client.lease import LeaseClient

from agent.core.pipeline import Pipeline
from agent.demo import sim_agent_config
from agent.run import EXIT_LEASE_LOST, EXIT_OK, AgentRunResult, run_agent
from configs import SHIPPED_DIR as CONFIG_DIR
from sim.server import SimServer
from sim.testing import close_sdk, connect_sdk
from sim.world import BodyState, Posture

pytestmark = pytest.mark.slow

SCENARIOS = CONFIG_DIR / "scenarios"
RULES = CONFIG_DIR / "rules"


@dataclass
class Sample:
    t: float  # local clock
    body: BodyState

    @property
    def speed(self) -> float:
        return math.hypot(self.body.vx, self.body.vy)


@dataclass
class Watch:
    """What the test saw while the agent ran."""

    samples: list[Sample] = field(default_factory=list)
    pipeline: Pipeline | None = None
    marks: dict[str, float] = field(default_factory=dict)

    def kinds(self) -> list[str]:
        assert self.pipeline is not None
        return [e.kind for e in self.pipeline.events.events]

    def first_event(self, kind: str) -> Any:
        assert self.pipeline is not None
        return next((e for e in self.pipeline.events.events if e.kind == kind), None)


async def _run(
    sim: SimServer,
    timeout_s: float,
    until: Callable[[Watch, Sample], bool],
    rules: Path | None = None,
    on_sample: Callable[[Watch, Sample], None] | None = None,
    **overrides: Any,
) -> tuple[AgentRunResult, Watch]:
    """Run the agent on `sim` until `until(watch, sample)` holds (or `timeout_s`)."""
    from agent.config import config_overrides

    cfg = config_overrides(sim_agent_config(sim, rules=rules), **overrides)
    watch = Watch()

    async def monitor() -> None:
        while watch.pipeline is None:
            await asyncio.sleep(0.01)
        while True:
            sample = Sample(time.time(), sim.world.snapshot())
            watch.samples.append(sample)
            if on_sample is not None:
                on_sample(watch, sample)
            if until(watch, sample):
                watch.pipeline.request_stop()
                return
            await asyncio.sleep(0.02)

    task = asyncio.create_task(monitor())
    try:
        result = await run_agent(
            cfg, timeout_s, stop_on_signals=False,
            on_pipeline=lambda p: setattr(watch, "pipeline", p),
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return result, watch


def _scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


def test_fiducial_ahead_walks_to_it_and_sits(tmp_path: Path) -> None:
    sim = SimServer.start(scenario=SCENARIOS / "fiducial_ahead.yaml", port=0)
    try:
        def sat_down(watch: Watch, s: Sample) -> bool:
            return "behavior_finished" in watch.kinds() and s.body.posture == Posture.SITTING

        result, watch = asyncio.run(_run(sim, 35.0, sat_down))
    finally:
        sim.stop()
    assert result.exit_code == EXIT_OK and result.report.reason == "stopped", result.report.reason
    finished = watch.first_event("behavior_finished")
    assert finished.data["outcome"] == "succeeded", finished.data
    # Tag 1 at (3, 0) facing the robot; go_to_fiducial stands 1 m in front of it, facing it.
    end = watch.samples[-1].body
    assert math.hypot(end.x - 2.0, end.y - 0.0) <= 0.2, (end.x, end.y)
    assert abs(end.yaw) < math.radians(10)
    assert end.posture == Posture.SITTING
    stats = result.report.stats
    # Time sync works: frames from the robot clock (offset from ours) are fresh, not dropped.
    assert stats["age_at_detection_ms"]["p50"] < 500 and stats["detected"] > 20


def test_follows_a_walking_person_and_stops_when_they_stop() -> None:
    sim = SimServer.start(scenario=SCENARIOS / "person_walking.yaml", port=0)
    person = sim.scenario.objects[0]
    try:
        def settled(watch: Watch, s: Sample) -> bool:
            # The walker stops about 3.5 s into the sim; give the robot time to close in.
            return s.body.sim_time_s > 14.0

        result, watch = asyncio.run(_run(sim, 35.0, settled, rules=RULES / "follow.yaml"))
    finally:
        sim.stop()
    assert result.report.reason == "stopped"
    assert "rule_fired" in watch.kinds()
    end = watch.samples[-1].body
    px, py, _ = person.pose_at(end.sim_time_s)
    distance = math.hypot(px - end.x, py - end.y)
    # It followed (walked well towards the person) and holds the set distance (1.5 m) ...
    assert end.x > 0.8
    assert abs(distance - 1.5) <= 0.35, distance
    # ... and stands still now that they stand still: no motion over the last 2 s.
    last = [s for s in watch.samples if s.t > watch.samples[-1].t - 2.0]
    assert max(s.speed for s in last) < 0.05
    assert math.hypot(last[-1].body.x - last[0].body.x, last[-1].body.y - last[0].body.y) < 0.05


def test_stop_sign_appearing_stops_the_robot_within_the_configured_time(tmp_path: Path) -> None:
    # The robot walks towards tag 1 (default rules); on the way a stop sign comes within the
    # stop_sign_ahead cue's range (3 m, 30 deg): the higher-priority rule must stop it.
    scenario = _scenario(tmp_path, """
description: "walking to tag 1, a stop sign ahead-left comes into range on the way"
robot_start: {x: 0.0, y: 0.0, yaw_deg: 0.0}
objects:
  - {type: apriltag, tag_id: 1, size_m: 0.2, pose: {x: 4.4, y: 0.0, z: 0.4, yaw_deg: 180.0}}
  - {type: stop_sign, size_m: 0.6, pose: {x: 3.6, y: 0.8, z: 0.9, yaw_deg: 180.0}}
""")
    sign = (3.6, 0.8)
    sim = SimServer.start(scenario=scenario, port=0)
    try:
        def in_range(s: Sample) -> bool:
            dx, dy = sign[0] - s.body.x, sign[1] - s.body.y
            bearing = math.atan2(dy, dx) - s.body.yaw
            return math.hypot(dx, dy) <= 3.0 and abs(math.degrees(bearing)) <= 30.0

        def mark(watch: Watch, s: Sample) -> None:
            if "appeared" not in watch.marks and in_range(s):
                watch.marks["appeared"] = s.t
                watch.marks["speed_then"] = s.speed

        def seated(watch: Watch, s: Sample) -> bool:
            return "appeared" in watch.marks and s.body.posture == Posture.SITTING

        result, watch = asyncio.run(_run(sim, 35.0, seated, on_sample=mark))
    finally:
        sim.stop()
    assert "appeared" in watch.marks, "the robot never came within the stop sign's range"
    assert watch.marks["speed_then"] > 0.2, "the robot was not walking when the sign appeared"
    fired = [e for e in watch.pipeline.events.events  # type: ignore[union-attr]
             if e.kind == "rule_fired" and e.data.get("rule") == "sit_at_stop_sign"]
    assert fired, watch.kinds()
    # Configured time: the cue's confirmation window (of_last frames at the camera rate), the
    # oldest frame the agent may act on, one control tick, and Spot's ~0.5 s to halt.
    cfg = sim_agent_config(sim)
    bound = 5 / 15.0 + cfg.safety.max_frame_age_s + 1.0 / cfg.safety.tick_hz + 0.5
    after = [s for s in watch.samples if s.t >= watch.marks["appeared"]]
    stopped_at = next(s.t for s in after if s.speed < 0.05)
    assert stopped_at - watch.marks["appeared"] <= bound, (stopped_at - watch.marks["appeared"], bound)
    # It stays stopped (and sits), never reaching the tag.
    assert watch.samples[-1].body.x < 2.5


def test_lease_taken_mid_behavior_stops_commanding_and_reports() -> None:
    # A 3 s lease timeout: the tablet takes the lease and then says nothing, so the agent (its own
    # E-Stop endpoint here) keeps checking in until that lease goes stale, then exits.
    sim = SimServer.start(scenario=SCENARIOS / "fiducial_ahead.yaml", port=0, lease_timeout_s=3.0)
    tablet = connect_sdk(sim, "operator-tablet")
    calls: list[tuple[float, str]] = []
    try:
        def spy(watch: Watch, s: Sample) -> None:
            robot = watch.pipeline.robot  # type: ignore[union-attr]
            if "spied" in watch.marks:
                return
            watch.marks["spied"] = s.t
            for client, names in ((robot.command_client, ("robot_command_async", "robot_command")),
                                  (robot.lease_client, ("acquire", "take", "acquire_async", "take_async"))):
                for name in names:
                    original = getattr(client, name)

                    def wrapped(*a: Any, _o: Any = original, _n: str = name, **k: Any) -> Any:
                        calls.append((time.time(), _n))
                        return _o(*a, **k)

                    setattr(client, name, wrapped)

        def take_when_walking(watch: Watch, s: Sample) -> bool:
            if "taken" not in watch.marks and s.speed > 0.2:
                tablet.ensure_client(LeaseClient.default_service_name).take()
                watch.marks["taken"] = time.time()
            return False  # the agent must end the run by itself

        result, watch = asyncio.run(_run(sim, 35.0, take_when_walking, on_sample=spy))
        holder = sim.leases.holder()
    finally:
        close_sdk(tablet)
        sim.stop()
    assert "taken" in watch.marks, ("the robot never started walking", watch.kinds())
    taken = watch.marks["taken"]
    assert result.report.reason == "lease_lost" and result.exit_code == EXIT_LEASE_LOST
    lost = watch.first_event("lease_lost")
    assert lost is not None and "lease taken by another client" in lost.message
    assert lost.time - taken < 0.6  # within a tick or a keep-alive period
    # After the take: at most the one command that discovered it, and never a lease grab.
    after = [name for t, name in calls if t > taken]
    assert sum(n.startswith("robot_command") for n in after) <= 1, after
    assert not any(n.startswith(("acquire", "take")) for n in after), after
    assert holder is not None and holder.client_name.startswith("operator-tablet")


def test_image_stall_stops_the_robot_within_the_watchdog_bound() -> None:
    sim = SimServer.start(scenario=SCENARIOS / "fiducial_ahead.yaml", port=0)
    try:
        def stall_when_walking(watch: Watch, s: Sample) -> bool:
            if "stalled" not in watch.marks and s.speed > 0.2:
                sim.stall_images(True)
                watch.marks["stalled"] = s.t
            return "stalled" in watch.marks and s.t > watch.marks["stalled"] + 3.0

        result, watch = asyncio.run(_run(sim, 35.0, stall_when_walking))
    finally:
        sim.stall_images(False)
        sim.stop()
    assert "stalled" in watch.marks, ("the robot never started walking", watch.kinds())
    stalled = watch.marks["stalled"]
    cfg = sim_agent_config(sim)
    tripped = watch.first_event("watchdog_tripped")
    assert tripped is not None, watch.kinds()
    # The last fresh result came before the stall: the trip follows within the bound + a tick.
    assert tripped.time - stalled <= cfg.safety.watchdog_s + 1.0 / cfg.safety.tick_hz + 0.05
    stops = [t for t, c in result.report.commands if c.kind == "stop" and t >= stalled]
    assert stops and stops[0] - tripped.time < 0.2
    after = [s for s in watch.samples if s.t >= stalled]
    stopped_at = next(s.t for s in after if s.speed < 0.05)
    assert stopped_at - stalled <= cfg.safety.watchdog_s + 1.0 / cfg.safety.tick_hz + 0.5
    # No motion command after the trip (behaviors halted; no frames, so no rule can fire).
    assert not [c for t, c in result.report.commands if t > tripped.time and c.kind in ("goto", "velocity")]
    assert result.report.stats["watchdog_trips"] == 1


def test_detector_on_a_network_compute_bridge_worker_follows_and_its_loss_stops_the_robot(tmp_path: Path) -> None:
    """`detector.type: network_compute_bridge`: every frame goes to a `spot-agent worker` process;
    the follow rule acts on its people as on the local detector's. Killing the worker mid-follow
    is a perception stall: the watchdog stops the robot within its bound."""
    from tests.support.ncb import WorkerProcess, worker_config

    sim = SimServer.start(scenario=SCENARIOS / "person_walking.yaml", port=0)
    worker = WorkerProcess("--config", str(worker_config(tmp_path, sim)), "--no-robot", "--workers", "2")
    try:
        def kill_when_following(watch: Watch, s: Sample) -> bool:
            if "killed" not in watch.marks and s.body.x > 0.8 and s.speed > 0.1:
                worker.kill()
                watch.marks["killed"] = s.t
            return "killed" in watch.marks and s.t > watch.marks["killed"] + 3.0

        result, watch = asyncio.run(_run(
            sim, 45.0, kill_when_following, rules=RULES / "follow.yaml",
            **{"detector.type": "network_compute_bridge",
               "detector.network_compute_bridge.address": f"127.0.0.1:{worker.port}"},
        ))
    finally:
        worker.kill()
        sim.stop()
    assert "killed" in watch.marks, ("the robot never followed the person", watch.kinds())
    killed = watch.marks["killed"]
    fired = watch.first_event("rule_fired")
    assert fired is not None and fired.time < killed  # the worker's people drove the follow rule
    cfg = sim_agent_config(sim)
    tripped = watch.first_event("watchdog_tripped")
    assert tripped is not None, watch.kinds()
    # Detection time counts too (a frame in flight at the kill fails at once: connection reset).
    assert tripped.time - killed <= cfg.safety.watchdog_s + 1.0 / cfg.safety.tick_hz + 0.3
    stopped_at = next(s.t for s in watch.samples if s.t >= tripped.time and s.speed < 0.05)
    assert stopped_at - killed <= cfg.safety.watchdog_s + 1.5
    stats = result.report.stats
    assert stats["detector_unavailable"] > 0 and stats["watchdog_trips"] == 1
