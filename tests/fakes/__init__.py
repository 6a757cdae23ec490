"""Stateful fakes shared by the tests, in one place (viam-style: they behave like the real pieces).

- Frame sources: `FakeCameras` (live, on the real clock: producer tasks at a rate into the same
  `LatestSlots` the Spot source uses; latest wins), `ScriptedCameras` (the same camera on virtual
  time: frames at a rate on a `FrameClock`, with stalls; every control tick runs at its exact
  time, whatever the machine's load), `ReplayFrames` (given frame times), `BrokenSource` (its
  stream raises).
- `SlowDetector`: a perceiver that takes real time in its worker thread and reports a label.
- `FakeEngine`: keeps behavior state, fires on a person cue, halts on demand; typed results like
  `behaviors.engine.CueEngine`.
- Robots: `agent.replay.dry_run.DryRunRobot` (records commands, integrates the body's pose, knows
  whether it still moves) and its troubled variants: `LeaseTakenRobot`, `FlakyLinkRobot`,
  `PoweredOffRobot`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from agent.core.clock import FrameClock
from agent.core.seams import ConnectionLost, LeaseLost, RobotGone, RobotStatus
from agent.replay.dry_run import DryRunRobot
from agent.spot.latest import LatestSlots
from behaviors.commands import MotionCommand, Stop, Velocity
from behaviors.cues import CueEdge
from behaviors.geometry import RobotPose
from behaviors.results import EngineEvent, TickResult
from perception.detection import FrameResult, Sighting
from perception.frame import Frame


class OrderedSource:
    """The `FrameSource` seam's defaults for sources that yield frames in order (replay)."""

    one_at_a_time = True

    async def start(self) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        pass


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
        self.one_at_a_time = False

    async def start(self) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {}

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
        self.events: list[EngineEvent] = []

    def observe(self, result: FrameResult) -> list[CueEdge]:
        self.observed.append(result)
        seen = any(s.label == "person" for s in result.sightings)
        edges = []
        if seen and self.armed:
            self.armed = False
            self.pending = True
            edges.append(CueEdge("person", True, result.time_local, "seen"))
            self.events.append(EngineEvent("cue_fired", result.time_local, {"message": "person seen"}))
        if not seen:
            self.armed = True
        return edges

    def tick(self, now: float, pose: RobotPose) -> TickResult:
        fired = None
        if self.pending:  # like the real engine, rules fire at the tick after the cue edge
            self.pending = False
            self.active = True
            fired = "walk"
            self.events.append(EngineEvent("rule_fired", now, {"message": "walk"}))
        return TickResult([Velocity(0.5, 0.0, 0.0, 0.6)] if self.active else [], fired)

    def halt(self, reason: str) -> None:
        self.halts.append(reason)
        self.active = False
        self.pending = False
        self.armed = False  # a halted behavior needs a fresh firing

    def stop(self, now: float, reason: str) -> list[MotionCommand]:
        self.active = False
        return [Stop()]

    def launch(self, name: str, params: dict[str, Any], now: float, source: str = "operator",
               priority: int | None = None) -> None:
        self.active = True

    def pause_cues(self) -> None:
        pass

    def resume_cues(self) -> None:
        pass

    def drain_events(self) -> list[EngineEvent]:
        out, self.events = self.events, []
        return out


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


class PoweredOffRobot(DryRunRobot):
    """Motors go off at `at` and the robot (its policy) says the run cannot go on."""

    def __init__(self, clock: Any, at: float) -> None:
        super().__init__(clock)
        self.at = at

    async def status(self) -> RobotStatus:
        if self.clock.now() >= self.at:
            raise RobotGone("motors are off: the robot restarted")
        return await super().status()


class ReplayFrames(OrderedSource):
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



class BrokenSource(OrderedSource):
    """A source whose stream raises after a few frames (a bug, a dropped file, a dead driver)."""

    def __init__(self) -> None:
        self.cameras = ["a"]

    async def frames(self) -> AsyncIterator[Frame]:
        for i in range(3):
            yield Frame("a", np.zeros((4, 4), np.uint8), 1000.0 + i, 1000.0 + i, seq=i)
        raise OSError("camera driver died")


class ScriptedCameras(OrderedSource):
    """One camera on virtual time: a frame every 1/`fps` s from `start` to `end` on `clock`,
    none during `stalls` ([from, to) spans: a stalled image service), each showing
    `label_at(t)`. Frames arrive `latency_s` after capture. Time moves only as frames are
    taken (`FrameClock.advance_to`), so control ticks, the watchdog and robot faults happen at
    exact virtual times: pipeline tests of control logic need neither the wall clock nor luck."""

    def __init__(self, clock: FrameClock, start: float, end: float, fps: float = 30.0,
                 label_at: Any = None, stalls: tuple[tuple[float, float], ...] = (),
                 latency_s: float = 0.0) -> None:
        self.cameras = ["a"]
        self.clock = clock
        self.start_time, self.end = start, end
        self.fps = fps
        self.label_at = label_at or (lambda t: None)
        self.stalls = stalls
        self.latency_s = latency_s

    async def frames(self) -> AsyncIterator[Frame]:
        # Time moves only once the control loop and the run's timer sleep on the clock: a jump
        # before that would skip the ticks due on the way.
        for _ in range(10_000):
            if self.clock.sleeping >= 2:
                break
            await asyncio.sleep(0)
        seq = 0
        while True:
            seq += 1
            t = self.start_time + seq / self.fps
            if t >= self.end:
                break
            if any(a <= t < b for a, b in self.stalls):
                continue
            await self.clock.advance_to(t + self.latency_s)
            yield Frame("a", np.zeros((4, 4), np.uint8), t + 100.0, t, seq=seq,
                        extra={"label": self.label_at(t)})
        await self.clock.advance_to(self.end)  # the rest of the run: ticks, timers
