"""Pipeline unit tests with stateful fakes: latest-wins, stale frames, watchdog, lease, reconnect.

The fakes behave like the real pieces (viam-style): the camera fake produces frames at a rate
into the same `LatestSlots` the Spot source uses, the detector fake takes real time in a worker
thread, the engine fake keeps behavior state and fires on cues, and `DryRunRobot` moves.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from fakes import (
    BrokenSource,
    FakeCameras,
    FakeEngine,
    FlakyLinkRobot,
    LeaseTakenRobot,
    PoweredOffRobot,
    ReplayFrames,
    ScriptedCameras,
    SlowDetector,
)

from agent.config import SafetyConfig
from agent.core.clock import FrameClock, SystemClock
from agent.core.observers import PipelineObserver
from agent.core.pipeline import Pipeline
from agent.replay.dry_run import DryRunRobot
from behaviors.commands import Stop, Velocity
from perception.frame import Frame

START = 1000.0  # virtual time of the tests on a FrameClock


def _safety(**kw: Any) -> SafetyConfig:
    base = dict(max_frame_age_s=0.5, watchdog_s=0.6, watchdog_startup_grace_s=0.0, tick_hz=20,
                detect_workers=1, reconnect_backoff_s=0.1, reconnect_backoff_max_s=0.4)
    base.update(kw)
    return SafetyConfig(**base)


# ------------------------------------------------------------------------------------ tests
def test_latest_frame_wins_and_no_backlog_builds() -> None:
    clock = SystemClock()
    cams = FakeCameras(["a"], fps=60, clock=clock)
    seen: list[Frame] = []
    robot = DryRunRobot(clock)
    pipe = Pipeline(cams, lambda: SlowDetector(0.05, seen), FakeEngine(), robot, _safety(), clock)
    report = asyncio.run(pipe.run(duration_s=1.5))

    produced = cams.produced["a"]
    detected = report.stats["detected"]
    # The detector manages ~20 frames/s of the ~60 offered: the rest are skipped, not queued.
    assert produced > 2 * detected
    assert cams.slots.stats["a"].skipped >= produced - detected - 3
    # Latest wins: frames reach the detector in order with gaps, never an old one after a new one.
    seqs = [f.seq for f in seen]
    assert seqs == sorted(seqs) and max(np.diff(seqs)) >= 2
    # No backlog: age at detection stays around one camera period, it never grows with time.
    ages = list(pipe.stats.age_at_detection_s.values)
    assert max(ages) < 0.05
    assert np.mean(ages[-5:]) < 0.05
    assert report.stats["dropped_stale"] == 0


def test_stale_frames_are_dropped_counted_and_never_acted_on() -> None:
    clock = SystemClock()
    # Every frame arrives 0.8 s old and shows a person: the engine must never hear of it.
    cams = FakeCameras(["a", "b"], fps=20, clock=clock, latency_s=0.8, label_at=lambda t: "person")
    engine = FakeEngine()
    robot = DryRunRobot(clock)
    pipe = Pipeline(cams, lambda: SlowDetector(0.0, []), engine, robot, _safety(watchdog_s=5.0), clock)
    report = asyncio.run(pipe.run(duration_s=0.8))

    assert report.stats["dropped_stale"] > 10
    assert report.stats["detected"] == 0
    assert engine.observed == []
    assert not any(isinstance(r.command, Velocity) for r in robot.recorded)


def test_frames_that_go_stale_during_detection_are_dropped() -> None:
    clock = SystemClock()
    # 0.3 s old on arrival + 0.3 s detection > 0.5 s bound: dropped after detection.
    cams = FakeCameras(["a"], fps=10, clock=clock, latency_s=0.3, label_at=lambda t: "person")
    engine = FakeEngine()
    pipe = Pipeline(cams, lambda: SlowDetector(0.3, []), engine, DryRunRobot(clock),
                    _safety(watchdog_s=5.0), clock)
    report = asyncio.run(pipe.run(duration_s=1.2))
    assert report.stats["dropped_stale"] >= 2
    assert engine.observed == []


def test_cue_to_motion_and_latency_measured() -> None:
    clock = SystemClock()
    start = clock.now()
    cams = FakeCameras(["a"], fps=30, clock=clock, label_at=lambda t: "person" if t > start + 0.3 else None)
    engine = FakeEngine()
    robot = DryRunRobot(clock)
    pipe = Pipeline(cams, lambda: SlowDetector(0.01, []), engine, robot, _safety(), clock)
    report = asyncio.run(pipe.run(duration_s=1.0))

    velocities = [r for r in robot.recorded if isinstance(r.command, Velocity)]
    assert velocities, "rule fired but no motion was commanded"
    assert velocities[0].time > start + 0.3
    assert report.stats["cue_to_command_ms"]["n"] == 1
    # Reacting right after the firing (not at the next 50 ms tick): a few ms from the result,
    # plus the 10 ms detection and up to a camera period from the capture.
    assert report.stats["cue_to_command_ms"]["p50"] < 20
    assert report.stats["capture_to_command_ms"]["p50"] < 80
    assert robot.x > 0.1  # the dry-run body walked
    assert isinstance(robot.recorded[-1].command, Stop)  # the run ends with a stop


def test_watchdog_stops_once_and_behaviors_stay_halted_until_rule_fires_again() -> None:
    clock = FrameClock(start=START)
    start = clock.now()
    # The image service stalls for 1 s, then frames return, still showing the same person.
    cams = ScriptedCameras(clock, start, start + 2.3, label_at=lambda t: "person",
                           stalls=((start + 0.5, start + 1.5),))
    engine = FakeEngine()
    robot = DryRunRobot(clock)
    pipe = Pipeline(cams, lambda: SlowDetector(0.0, []), engine, robot, _safety(watchdog_s=0.4), clock)
    report = asyncio.run(pipe.run(duration_s=2.2))
    trips = [e for e in report.events if e.kind == "watchdog_tripped"]
    assert len(trips) == 1
    stall_at = start + 0.5
    # Tripped within the bound (+ one tick and a frame period of slack).
    assert trips[0].time - stall_at <= 0.4 + 0.05 + 0.034 + 0.05
    stops = [r for r in robot.recorded if isinstance(r.command, Stop) and r.time < start + 2.1]
    assert len(stops) == 1 and abs(stops[0].time - trips[0].time) < 0.05
    assert "perception watchdog" in engine.halts
    assert any(e.kind == "watchdog_recovered" for e in report.events)
    # Frames came back but the rule did not fire again: no motion after the trip.
    assert not any(isinstance(r.command, Velocity) and r.time > trips[0].time for r in robot.recorded)


@pytest.mark.parametrize("grace_s, trips", [(1.0, 0), (0.0, 1)])
def test_watchdog_allows_a_startup_grace_for_the_first_detection(grace_s: float, trips: int) -> None:
    clock = FrameClock(start=START)
    # The streams are still connecting: the first frame comes 0.6 s after the start.
    cams = ScriptedCameras(clock, START, START + 1.1, stalls=((START, START + 0.6),))
    pipe = Pipeline(cams, lambda: SlowDetector(0.0, []), FakeEngine(), DryRunRobot(clock),
                    _safety(watchdog_s=0.3, watchdog_startup_grace_s=grace_s), clock)
    report = asyncio.run(pipe.run(duration_s=1.0))
    assert report.stats["watchdog_trips"] == trips


def test_lease_taken_stops_commanding_at_once_and_reports() -> None:
    clock = FrameClock(start=START)
    start = clock.now()
    cams = ScriptedCameras(clock, start, start + 3.1, label_at=lambda t: "person")
    engine = FakeEngine()
    robot = LeaseTakenRobot(clock, taken_at=start + 0.5)
    pipe = Pipeline(cams, lambda: SlowDetector(0.0, []), engine, robot, _safety(), clock)
    report = asyncio.run(pipe.run(duration_s=3.0))

    assert report.reason == "lease_lost" and not report.ok
    assert clock.now() - start < 1.0  # ended at once, not at the duration
    assert [e.kind for e in report.events].count("lease_lost") == 1
    assert "lease lost" in engine.halts
    assert all(r.time < start + 0.5 for r in robot.recorded)
    # One failed call revealed the loss; nothing was tried after it (no final Stop either).
    assert robot.send_attempts_after_loss + robot.status_calls_after_loss == 1


def test_connection_loss_halts_reconnects_with_backoff_and_does_not_resume() -> None:
    clock = FrameClock(start=START)
    start = clock.now()
    cams = ScriptedCameras(clock, start, start + 2.1, label_at=lambda t: "person")
    engine = FakeEngine()
    robot = FlakyLinkRobot(clock, start + 0.4, start + 1.4)
    pipe = Pipeline(cams, lambda: SlowDetector(0.0, []), engine, robot, _safety(), clock)
    report = asyncio.run(pipe.run(duration_s=2.0))

    kinds = [e.kind for e in report.events]
    assert kinds.count("connection_lost") == 1 and kinds.count("reconnected") == 1
    assert "connection lost" in engine.halts
    # Backoff: 0.1, 0.2, 0.4, 0.4 ... -> a handful of attempts in 1 s, not one per tick (20).
    attempts = robot.status_attempts_while_down
    assert 3 <= len(attempts) <= 7
    gaps = np.diff(attempts)
    assert gaps[-1] > gaps[0]
    # After reconnecting the same person is still in view, but nothing moves again by itself.
    assert not any(isinstance(r.command, Velocity) and r.time > start + 0.4 for r in robot.recorded)
    assert report.reason == "duration"


def test_robot_gone_ends_the_run_with_its_reason_and_sends_nothing_after() -> None:
    clock = FrameClock(start=START)
    start = clock.now()
    cams = ScriptedCameras(clock, start, start + 5.1, label_at=lambda t: "person")
    robot = PoweredOffRobot(clock, start + 0.5)
    pipe = Pipeline(cams, lambda: SlowDetector(0.0, []), FakeEngine(), robot, _safety(), clock)
    report = asyncio.run(pipe.run(duration_s=5.0))
    assert report.reason == "robot_unavailable" and not report.ok
    assert report.detail == "motors are off: the robot restarted"
    assert clock.now() - start < 2.0  # ended at once, not at the duration
    gone = [e for e in report.events if e.kind == "robot_gone"]
    assert len(gone) == 1 and gone[0].data["reason"] == "robot_unavailable"
    assert not [c for c in robot.recorded if c.time >= start + 0.5]


def test_still_disconnected_lines_carry_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    clock = FrameClock(start=START)
    start = clock.now()
    cams = ScriptedCameras(clock, start, start + 1.7)
    robot = FlakyLinkRobot(clock, start + 0.2, start + 1.5)
    pipe = Pipeline(cams, lambda: SlowDetector(0.0, []), FakeEngine(), robot, _safety(), clock)
    with caplog.at_level("INFO", logger="agent.core.robot_link"):
        asyncio.run(pipe.run(duration_s=1.6))
    waits = [r for r in caplog.records if getattr(r, "event", None) == "reconnect_wait"]
    assert waits and all(getattr(r, "reason", "") == "robot did not answer" for r in waits)


def _replay_once() -> list[tuple[float, str]]:
    clock = FrameClock(start=1000.0)
    times = [1000.0 + i / 15.0 for i in range(45)]
    source = ReplayFrames(clock, times, lambda t: "person" if 1000.5 < t < 1002.0 else None)
    robot = DryRunRobot(clock)
    pipe = Pipeline(source, lambda: SlowDetector(0.002, []), FakeEngine(), robot,
                    _safety(detect_workers=1, watchdog_s=1.0, tick_hz=10), clock)
    report = asyncio.run(pipe.run())
    assert report.reason == "source_ended"
    return [(round(r.time, 6), r.command.kind) for r in robot.recorded]


def test_replay_with_frame_clock_is_deterministic() -> None:
    first = _replay_once()
    assert first == _replay_once()
    kinds = [k for _, k in first]
    assert "velocity" in kinds
    # Ticks happen at exact virtual tick times (10 Hz from the first frame), not wall time.
    tick_times = [t for t, k in first if k == "velocity"]
    assert all(abs((t - 1000.0) * 10 - round((t - 1000.0) * 10)) < 1e-6 or t in
               [round(x, 6) for x in [1000.0 + i / 15.0 for i in range(45)]] for t in tick_times)


def test_a_failing_source_ends_the_run_with_its_reason_instead_of_hanging() -> None:
    clock = FrameClock(start=1000.0)
    pipe = Pipeline(BrokenSource(), lambda: SlowDetector(0.0, []), FakeEngine(), DryRunRobot(clock),
                    _safety(detect_workers=1), clock)
    report = asyncio.run(asyncio.wait_for(pipe.run(), timeout=30))
    assert report.reason == "source_failed"
    failed = [e for e in report.events if e.kind == "source_failed"]
    assert failed and "camera driver died" in failed[0].message


class _SlowStatusRobot(DryRunRobot):
    """A robot whose status takes 0.2 s to come back, so the run's end falls mid-step."""

    async def status(self) -> Any:
        await asyncio.sleep(0.2)
        return await super().status()


class _StepStarts(PipelineObserver):
    def __init__(self) -> None:
        self.triggers: list[str] = []

    def control_step(self, now: float, trigger: str) -> None:
        self.triggers.append(trigger)


def test_a_control_step_under_way_when_the_run_ends_finishes_before_the_final_stop() -> None:
    """Regression: the end of a run cancelled the step awaiting the robot's status, so a recorded
    step sent nothing live and its command in the replay (live 29 commands, replay 30)."""
    clock = SystemClock()
    cams = FakeCameras(["a"], fps=30, clock=clock, label_at=lambda t: "person")
    robot = _SlowStatusRobot(clock)
    steps = _StepStarts()
    pipe = Pipeline(cams, lambda: SlowDetector(0.01, []), FakeEngine(), robot, _safety(), clock, observers=[steps])
    asyncio.run(pipe.run(duration_s=1.0))
    kinds = [type(r.command).__name__ for r in robot.recorded]
    assert kinds[-1] == "Stop" and kinds.count("Stop") == 1
    # The walk starts at the cue's step; every step from there on (recorded as begun) sent its
    # velocity, the last one included, then the run's stop.
    walking = steps.triggers[steps.triggers.index("cue"):]
    assert "stop" not in walking and kinds.count("Velocity") == len(walking), (kinds, walking)
