"""The deadman promise: when the agent dies, the robot is stopped within a second.

The agent runs as its own process against the sim and is killed with SIGKILL (nothing of it
runs after that: no stop command, no clean-up). What stops the body is only the deadline each
motion command carried, plus the robot's braking. Measured on the robot clock, per physics step.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from support.agent_process import AgentProcess, MotionTrace, wait_for

from agent.config import SafetyConfig
from configs import SHIPPED_DIR as CONFIG_DIR
from sim.server import SimServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

PROMISE_S = SafetyConfig().stop_within_s  # the README: stopped within a second


@pytest.mark.parametrize(
    ("scenario", "rules", "cruise_mps"),
    [
        # Tag 1 at 3 m: the default rules stand, then walk to 1 m in front of it (go-to).
        ("fiducial_ahead.yaml", None, 0.45),
        # A person stops 3 m ahead: follow walks after them (velocity commands).
        ("person_walking.yaml", "follow", 0.35),
    ],
    ids=["go_to_fiducial", "follow"],
)
def test_kill_9_while_walking_stops_the_body_within_the_promise(
    tmp_path: Path, scenario: str, rules: str | None, cruise_mps: float
) -> None:
    sim = SimServer.start(scenario=CONFIG_DIR / "scenarios" / scenario, port=0)
    trace = MotionTrace(sim.world)
    agent = AgentProcess(sim, tmp_path, rules=rules, log_level="warning")
    try:
        def cruising() -> bool:
            assert agent.alive(), agent.log()[-3000:]
            body = sim.world.snapshot()
            # Walking fast, and far enough from where it is going (x ~ 1.5-2) not to be
            # slowing down for it yet.
            return body.vx > cruise_mps and 0.2 < body.x < 1.2

        wait_for("the robot to walk at cruise speed", cruising, 90, every=0.005)
        killed_at = sim.world.clock.now_ns()
        agent.send(signal.SIGKILL)
        speed_at_kill = sim.world.snapshot().vx
        wait_for("the body to stand still", lambda: trace.seconds_to_still(killed_at) is not None, 5)
        # It stays still (nothing else commands it): judge over 2.5 s after the kill.
        wait_for("2.5 s of trace", lambda: sim.world.clock.now_ns() > killed_at + 2.5e9, 5)
        stop_s = trace.seconds_to_still(killed_at)
    finally:
        agent.close()
        sim.stop()
    assert stop_s is not None, "the body moved again after stopping"
    print(f"kill -9 at {speed_at_kill:.2f} m/s ({scenario}): body still {stop_s:.3f} s later")
    assert stop_s <= PROMISE_S, f"stopped {stop_s:.3f} s after kill -9 (promise {PROMISE_S} s)"
