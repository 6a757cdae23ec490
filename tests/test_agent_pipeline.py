"""Pipeline unit tests with stateful fakes: latest-wins, stale frames, watchdog, lease, reconnect.

The fakes behave like the real pieces (viam-style): the camera fake produces frames at a rate
into the same `LatestSlots` the Spot source uses, the detector fake takes real time in a worker
thread, the engine fake keeps behavior state and fires on cues, and `DryRunRobot` moves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from agent.config import SafetyConfig
from agent.core.clock import FrameClock, SystemClock
from agent.core.pipeline import Pipeline
from agent.core.robot import ConnectionLost, LeaseLost, RobotGone, RobotStatus
from agent.replay.dry_run import DryRunRobot
from agent.spot.latest import LatestSlots
from behaviors.commands import MotionCommand, Stop, Velocity
from behaviors.geometry import RobotPose
from perception.detection import FrameResult, Sighting
from perception.frame import Frame


# ------------------------------------------------------------------------------------ fakes
class FakeCameras:
    """Live source: producer tasks put frames into latest slots at `fps` per camera.

    `label_at(t)` says what each frame shows; `latency_s` makes frames arrive that old;
    `paused` stops production (a stalled image service).
    """

    def __init__(self, cameras: list[str], fps: float, clock: Any, latency_s: float = 0.0,
                 label_at: Any = None) -> None:
        self.cameras = cameras
        self.fps = fps
        self.clock = clock
        self.latency_s = latency_s
        self.label_at = label_at or (lambda t: None)
        self.paused = False
        self.slots: LatestSlots[Frame] = LatestSlots(cameras)
        self.produced: dict[str, int] = {c: 0 for c in cameras}
        self._tasks: list[asyncio.Task[None]] = []

    async def _produce(self, camera: str) -> None:
        seq = 0
        while True:
            await asyncio.sleep(1.0 / self.fps)
            if self.paused:
                continue
            seq += 1
            now = self.clock.now()
            label = self.label_at(now)
            self.produced[camera] += 1
            self.slots.put(camera, Frame(
                camera=camera,
                image=np.zeros((4, 4), np.uint8),
                acquisition_time_robot=now - self.latency_s + 100.0,
                acquisition_time_local=now - self.latency_s,
                seq=seq,
                extra={"label": label},
            ))

    async def frames(self) -> AsyncIterator[Frame]:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._produce(c)) for c in self.cameras]
        while True:
            taken = await self.slots.take()
            if taken is None:
                return
            yield taken[1]

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.slots.close()


class SlowDetector:
    """Takes `seconds` of real time per frame (in the worker thread) and reports the label."""

    def __init__(self, seconds: float, seen: list[Frame]) -> None:
        self.seconds = seconds
        self.seen = seen

    def __call__(self, frame: Frame) -> FrameResult:
        time.sleep(self.seconds)
        self.seen.append(frame)
        label = frame.extra.get("label")
        sightings = [] if label is None else [Sighting(
            label=label, score=0.9, camera=frame.camera, box=(0, 0, 1, 1), image_size=(4, 4),
            time_local=frame.acquisition_time_local, distance_m=2.0, bearing_rad=0.0)]
        return FrameResult(frame.camera, frame.seq, frame.acquisition_time_robot,
                           frame.acquisition_time_local, sightings, detect_ms=self.seconds * 1000)


class FakeEngine:
    """Walks forward while a person is seen (rule fires on the first sighting); halts on demand.

    Like the real engine, a halted behavior only restarts when the rule fires again, which needs
    the cue to be absent first and then seen again (`rearm`).
    """

    def __init__(self) -> None:
        self.observed: list[FrameResult] = []
        self.active = False
        self.pending = False
        self.armed = True
        self.halts: list[str] = []
        self.events: list[dict[str, Any]] = []

    def observe(self, result: FrameResult) -> None:
        self.observed.append(result)
        seen = any(s.label == "person" for s in result.sightings)
        if seen and self.armed:
            self.armed = False
            self.pending = True
            self.events.append({"kind": "cue_fired", "message": "person seen", "time": result.time_local})
        if not seen:
            self.armed = True

    def tick(self, now: float, pose: RobotPose) -> list[MotionCommand]:
        if self.pending:  # like the real engine, rules fire at the tick after the cue edge
            self.pending = False
            self.active = True
            self.events.append({"kind": "rule_fired", "message": "walk", "time": now})
        return [Velocity(0.5, 0.0, 0.0, 0.6)] if self.active else []

    def halt(self, reason: str) -> None:
        self.halts.append(reason)
        self.active = False
        self.pending = False
        self.armed = False  # a halted behavior needs a fresh firing

    def stop(self, now: float, reason: str) -> list[MotionCommand]:
        self.active = False
        return [Stop()]

    def drain_events(self) -> list[Any]:
        out, self.events = self.events, []
        return out


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
    clock = SystemClock()
    start = clock.now()
    cams = FakeCameras(["a"], fps=30, clock=clock, label_at=lambda t: "person")
    engine = FakeEngine()
    robot = DryRunRobot(clock)
    pipe = Pipeline(cams, lambda: SlowDetector(0.01, []), engine, robot, _safety(watchdog_s=0.4), clock)

    async def scenario() -> Any:
        async def stall_then_resume() -> None:
            await asyncio.sleep(0.5)
            cams.paused = True  # image service stalls
            await asyncio.sleep(1.0)
            cams.paused = False  # frames return, still showing the same person
        stall = asyncio.create_task(stall_then_resume())
        report = await pipe.run(duration_s=2.2)
        await stall
        return report

    report = asyncio.run(scenario())
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
    clock = SystemClock()
    cams = FakeCameras(["a"], fps=30, clock=clock)
    cams.paused = True  # streams still connecting

    async def scenario() -> Any:
        async def connect_late() -> None:
            await asyncio.sleep(0.6)
            cams.paused = False
        connecting = asyncio.create_task(connect_late())
        pipe = Pipeline(cams, lambda: SlowDetector(0.0, []), FakeEngine(), DryRunRobot(clock),
                        _safety(watchdog_s=0.3, watchdog_startup_grace_s=grace_s), clock)
        report = await pipe.run(duration_s=1.0)
        await connecting
        return report

    report = asyncio.run(scenario())
    assert report.stats["watchdog_trips"] == trips


class LeaseTakenRobot(DryRunRobot):
    """A dry-run robot whose lease is taken by another client at `taken_at`."""

    def __init__(self, clock: Any, taken_at: float) -> None:
        super().__init__(clock)
        self.taken_at = taken_at
        self.send_attempts_after_loss = 0
        self.status_calls_after_loss = 0

    def _lost(self) -> bool:
        return self.clock.now() >= self.taken_at

    async def send(self, command: MotionCommand) -> None:
        if self._lost():
            self.send_attempts_after_loss += 1
            raise LeaseLost("lease taken by another client")
        await super().send(command)

    async def status(self) -> RobotStatus:
        if self._lost():
            self.status_calls_after_loss += 1
            raise LeaseLost("lease taken by another client")
        return await super().status()


def test_lease_taken_stops_commanding_at_once_and_reports() -> None:
    clock = SystemClock()
    start = clock.now()
    cams = FakeCameras(["a"], fps=30, clock=clock, label_at=lambda t: "person")
    engine = FakeEngine()
    robot = LeaseTakenRobot(clock, taken_at=start + 0.5)
    pipe = Pipeline(cams, lambda: SlowDetector(0.01, []), engine, robot, _safety(), clock)
    report = asyncio.run(pipe.run(duration_s=3.0))

    assert report.reason == "lease_lost" and not report.ok
    assert clock.now() - start < 1.0  # ended at once, not at the duration
    assert [e.kind for e in report.events].count("lease_lost") == 1
    assert "lease lost" in engine.halts
    assert all(r.time < start + 0.5 for r in robot.recorded)
    # One failed call revealed the loss; nothing was tried after it (no final Stop either).
    assert robot.send_attempts_after_loss + robot.status_calls_after_loss == 1


class FlakyLinkRobot(DryRunRobot):
    """A dry-run robot that does not answer between `down_from` and `down_until`."""

    def __init__(self, clock: Any, down_from: float, down_until: float) -> None:
        super().__init__(clock)
        self.down = (down_from, down_until)
        self.status_attempts_while_down: list[float] = []

    def _is_down(self) -> bool:
        return self.down[0] <= self.clock.now() < self.down[1]

    async def send(self, command: MotionCommand) -> None:
        if self._is_down():
            raise ConnectionLost("robot did not answer")
        await super().send(command)

    async def status(self) -> RobotStatus:
        if self._is_down():
            self.status_attempts_while_down.append(self.clock.now())
            raise ConnectionLost("robot did not answer")
        return await super().status()


def test_connection_loss_halts_reconnects_with_backoff_and_does_not_resume() -> None:
    clock = SystemClock()
    start = clock.now()
    cams = FakeCameras(["a"], fps=30, clock=clock, label_at=lambda t: "person")
    engine = FakeEngine()
    robot = FlakyLinkRobot(clock, start + 0.4, start + 1.4)
    pipe = Pipeline(cams, lambda: SlowDetector(0.01, []), engine, robot, _safety(), clock)
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


class PoweredOffRobot(DryRunRobot):
    """Motors go off at `at` and the robot (its policy) says the run cannot go on."""

    def __init__(self, clock: Any, at: float) -> None:
        super().__init__(clock)
        self.at = at

    async def status(self) -> RobotStatus:
        if self.clock.now() >= self.at:
            raise RobotGone("motors are off: the robot restarted")
        return await super().status()


def test_robot_gone_ends_the_run_with_its_reason_and_sends_nothing_after() -> None:
    clock = SystemClock()
    start = clock.now()
    cams = FakeCameras(["a"], fps=30, clock=clock, label_at=lambda t: "person")
    robot = PoweredOffRobot(clock, start + 0.5)
    pipe = Pipeline(cams, lambda: SlowDetector(0.01, []), FakeEngine(), robot, _safety(), clock)
    report = asyncio.run(pipe.run(duration_s=5.0))
    assert report.reason == "robot_unavailable" and not report.ok
    assert report.detail == "motors are off: the robot restarted"
    assert clock.now() - start < 2.0  # ended at once, not at the duration
    gone = [e for e in report.events if e.kind == "robot_gone"]
    assert len(gone) == 1 and gone[0].data["reason"] == "robot_unavailable"
    assert not [c for c in robot.recorded if c.time >= start + 0.5]


def test_still_disconnected_lines_carry_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    clock = SystemClock()
    start = clock.now()
    cams = FakeCameras(["a"], fps=30, clock=clock)
    robot = FlakyLinkRobot(clock, start + 0.2, start + 1.5)
    pipe = Pipeline(cams, lambda: SlowDetector(0.01, []), FakeEngine(), robot, _safety(), clock)
    with caplog.at_level("INFO", logger="agent.core.pipeline"):
        asyncio.run(pipe.run(duration_s=1.6))
    waits = [r for r in caplog.records if getattr(r, "event", None) == "reconnect_wait"]
    assert waits and all(getattr(r, "reason", "") == "robot did not answer" for r in waits)


class ReplayFrames:
    """Recorded frames replayed in order; time follows the recording through a FrameClock."""

    def __init__(self, clock: FrameClock, times: list[float], label_at: Any) -> None:
        self.cameras = ["a"]
        self.clock = clock
        self.times = times
        self.label_at = label_at

    async def frames(self) -> AsyncIterator[Frame]:
        for i, t in enumerate(self.times):
            await self.clock.advance_to(t)
            yield Frame("a", np.zeros((4, 4), np.uint8), t + 50.0, t, seq=i,
                        extra={"label": self.label_at(t)})

    async def close(self) -> None:
        pass


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


class BrokenSource:
    """A source whose stream raises after a few frames (a bug, a dropped file, a dead driver)."""

    def __init__(self) -> None:
        self.cameras = ["a"]

    async def frames(self) -> AsyncIterator[Frame]:
        for i in range(3):
            yield Frame("a", np.zeros((4, 4), np.uint8), 1000.0 + i, 1000.0 + i, seq=i)
        raise OSError("camera driver died")

    async def close(self) -> None:
        pass


def test_a_failing_source_ends_the_run_with_its_reason_instead_of_hanging() -> None:
    clock = FrameClock(start=1000.0)
    pipe = Pipeline(BrokenSource(), lambda: SlowDetector(0.0, []), FakeEngine(), DryRunRobot(clock),
                    _safety(detect_workers=1), clock)
    report = asyncio.run(asyncio.wait_for(pipe.run(), timeout=30))
    assert report.reason == "source_failed"
    failed = [e for e in report.events if e.kind == "source_failed"]
    assert failed and "camera driver died" in failed[0].message
