"""The streaming pipeline: frames -> detection (thread pool) -> cue engine -> robot commands.

One pipeline serves the robot, the sim and replay; only the seams differ:
- `FrameSource`: live sources keep the newest frame per camera and hand one over when asked
  (latest wins); replay yields recorded frames in order.
- `Robot`: `SpotRobot` over gRPC, or `DryRunRobot` recording commands.
- `Clock`: `SystemClock` live, `FrameClock` in replay (time follows the recording).

Flow. The intake asks the source for a frame only when a detector thread is free, so a slow
detector never builds a backlog: the live source overwrites (skips) frames instead. Each frame's
age (local clock now - capture time, converted from the robot clock by the source) is measured
when detection starts and when its result is ready; a frame older than `max_frame_age_s` at
either point is dropped, counted and never reaches the cue engine. The control loop ticks the
engine at `tick_hz` and sends its commands; when a result raises a cue, a control step runs
right away instead of waiting for the next tick.

The engine's inputs are serialised: an observation (and the cue step it may trigger) and a
control step (robot status, tick, commands) never interleave, so the order observers see (and
recordings keep) is the order the engine saw.

Operators act through the pipeline too (`launch`, `stop_now`, `pause_cues`, `resume_cues`):
under the same lock and on the same clock, told to observers as `operator_input`, so a
recording holds them in order and replay gives them to the engine again.

Safety: the perception watchdog here; caps, lease loss, robot gone, connection loss in `RobotLink`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from agent.core.clock import Clock, SystemClock
from agent.core.config import SafetyConfig
from agent.core.detector_threads import DetectorThreads
from agent.core.events import AgentEvent, EventLog
from agent.core.observers import OperatorInput, PipelineObserver
from agent.core.robot_link import LinkHooks, RobotLink
from agent.core.safety import PerceptionWatchdog, WatchdogChange
from agent.core.seams import (
    BehaviorEngine,
    FrameSource,
    PerceiverFactory,
    Robot,
    RobotStatus,
)
from agent.core.stats import PipelineStats
from behaviors.commands import MotionCommand, Stop
from behaviors.results import EngineEvent
from perception.detection import FrameResult
from perception.frame import Frame
from perception.network_compute import NetworkComputeError

log = logging.getLogger(__name__)


@dataclass
class PipelineReport:
    """How a run ended, what happened and what was measured."""

    # "duration", "source_ended", "source_failed", "lease_lost", "stopped", or a
    # `RobotGone.exit_reason` ("robot_unavailable", "cannot_connect")
    reason: str
    events: list[AgentEvent]
    stats: dict[str, Any]
    commands: list[tuple[float, MotionCommand]] = field(default_factory=list)
    final_status: RobotStatus | None = None
    detail: str = ""  # why the run ended, in words, when the robot ended it

    @property
    def ok(self) -> bool:
        return self.reason in ("duration", "source_ended", "stopped")


class Pipeline:
    """Runs perception and behaviors against a robot until told to stop or the source ends.

    Built by `agent.core.assembly.build_pipeline` from a config and the seams; it owns the
    source (starts, reads and closes it).
    """

    def __init__(
        self,
        source: FrameSource,
        perceiver_factory: PerceiverFactory,
        engine: BehaviorEngine,
        robot: Robot,
        safety: SafetyConfig,
        clock: Clock | None = None,
        events: EventLog | None = None,
        observers: list[PipelineObserver] | None = None,
    ) -> None:
        self.source = source
        self.perceiver_factory = perceiver_factory
        self.engine = engine
        self.safety = safety
        self.clock = clock or SystemClock()
        self.events = events or EventLog()
        self.observers: list[PipelineObserver] = list(observers or [])
        # (frame, result) callbacks for each result the engine observed (live views).
        self.result_listeners: list[Any] = []
        self.events.listeners.append(self._tell_event)
        self.stats = PipelineStats()
        self.link = RobotLink(robot, safety, self.stats, LinkHooks(
            now=self.clock.now, tell=self._tell, event=self._event, halt=self._halt,
            finish=self._finish, spawn=self._spawn,
        ))
        # A source that decides the time between frames (replay) gets one frame detected,
        # observed and reacted to before it yields the next: one detector then.
        self.detect_workers = 1 if source.one_at_a_time else safety.detect_workers
        self._detectors: DetectorThreads | None = None  # made by `run`
        self._free_workers = asyncio.Semaphore(self.detect_workers)
        self._engine_lock = asyncio.Lock()  # one engine input at a time (see module docstring)
        self._inflight: set[asyncio.Task[None]] = set()
        self._done = asyncio.Event()
        self._end_reason = "stopped"
        self._unavailable_said = float("-inf")  # when a down remote detector was last logged
        self._stepping = False  # a periodic control step is under way
        self._watchdog: PerceptionWatchdog | None = None
        # (capture time, result time) of the frame that raised a cue, until a rule acts on it.
        self._cue_times: tuple[float, float] | None = None

    @property
    def robot(self) -> Robot:
        return self.link.robot

    @property
    def commands(self) -> list[tuple[float, MotionCommand]]:
        return self.link.commands

    # ------------------------------------------------------------------- observers, events
    def _tell(self, method: str, *args: Any) -> None:
        for observer in self.observers:
            try:
                getattr(observer, method)(*args)
            except Exception:  # an observer must never take the control path down
                log.exception("pipeline observer failed", extra={"event": "observer_failed",
                                                                 "observer": type(observer).__name__})

    def _tell_event(self, event: AgentEvent) -> None:
        self._tell("event", event)

    def _event(self, kind: str, message: str, **data: Any) -> AgentEvent:
        return self.events.add(AgentEvent(self.clock.now(), kind, message, data))

    def _record_engine_events(self) -> None:
        """Move what the engine did into the event log (for the record, never for decisions)."""
        for raw in self.engine.drain_events():
            self.events.add(_agent_event(raw))

    def _halt(self, reason: str) -> None:
        self.engine.halt(reason)
        self._record_engine_events()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    # --------------------------------------------------------------------------- detection
    def _too_old(self, frame: Frame, now: float, counters: Any, stage: str) -> bool:
        age = now - frame.acquisition_time_local
        if age <= self.safety.max_frame_age_s:
            return False
        counters.dropped_stale += 1
        log.debug(
            "stale frame dropped",
            extra={"event": "frame_dropped", "camera": frame.camera, "age_s": round(age, 3),
                   "stage": stage},
        )
        return True

    async def _detect_and_observe(self, frame: Frame) -> None:
        counters = self.stats.camera(frame.camera)
        counters.frames += 1
        self._tell("frame_taken", frame)
        started = self.clock.now()
        if self._too_old(frame, started, counters, "before_detection"):
            return
        age_at_detection = started - frame.acquisition_time_local
        self.stats.age_at_detection_s.add(age_at_detection)
        assert self._detectors is not None
        result = await self._detectors.perceive(frame)
        async with self._engine_lock:
            finished = self.clock.now()
            if self._too_old(frame, finished, counters, "after_detection"):
                return
            result.age_at_detection_s = age_at_detection
            self.stats.result_ready(result, finished - frame.acquisition_time_local)
            if not self.link.ours_to_command or self._done.is_set():
                return
            await self._observe_locked(frame, result, finished)

    async def _observe_locked(self, frame: Frame, result: FrameResult, finished: float) -> None:
        """Give one result to the engine; the caller holds the engine lock."""
        self._tell("result_observed", finished, result)
        for listener in self.result_listeners:
            try:
                listener(frame, result)
            except Exception:
                log.exception("result listener failed", extra={"event": "listener_failed"})
        edges = self.engine.observe(result)
        if self._watchdog is not None:
            # Freshness is the capture time: the watchdog bounds how old the newest information
            # is, whatever queueing or detection time came after the camera.
            self._watchdog.feed(result.time_local)
        self.link.latest_result_time = max(self.link.latest_result_time or 0.0, result.time_local)
        self._record_engine_events()
        if any(edge.rising for edge in edges):
            self._cue_times = (result.time_local, finished)
            await self._control_step_locked("cue")  # react now rather than at the next tick

    async def _run_detection(self, frame: Frame) -> None:
        try:
            await self._detect_and_observe(frame)
        except NetworkComputeError as exc:  # a remote detector down or slow: no traceback, at most
            self.stats.detector_unavailable += 1  # every 5 s; the watchdog stops, next frame retries
            if self.clock.now() - self._unavailable_said >= 5.0:
                self._unavailable_said = self.clock.now()
                log.warning("detector unavailable (%d frames so far): %s", self.stats.detector_unavailable, exc,
                            extra={"event": "detector_unavailable", "camera": frame.camera})
        except Exception:
            log.exception("detection failed", extra={"event": "detect_failed", "camera": frame.camera})
        finally:
            self._free_workers.release()

    async def _intake(self) -> None:
        frames = self.source.frames().__aiter__()
        while not self._done.is_set():
            # A frame is asked for only when a detector is free: the source hands over its
            # newest frame then, and nothing queues up behind a slow detector.
            await self._free_workers.acquire()
            try:
                frame = await frames.__anext__()
            except StopAsyncIteration:
                self._free_workers.release()
                break
            except Exception as exc:  # a broken source must end the run, not leave it waiting
                self._free_workers.release()
                log.exception("frame source failed", extra={"event": "source_failed"})
                self._event("source_failed", f"frame source failed: {type(exc).__name__}: {exc}",
                            error=str(exc))
                await self._drain_inflight()
                self._finish("source_failed")
                return
            self._spawn(self._run_detection(frame))
        await self._drain_inflight()
        self._finish("source_ended")

    async def _drain_inflight(self) -> None:
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    # ----------------------------------------------------------------------------- control
    async def _control_loop(self) -> None:
        period = 1.0 / self.safety.tick_hz
        next_tick = self.clock.now()
        while not self._done.is_set():
            await self.clock.sleep_until(next_tick)
            if self._done.is_set():
                break
            async with self._engine_lock:
                self._stepping = True
                await self._control_step_locked("tick")
                self._stepping = False
            next_tick += period
            now = self.clock.now()
            if next_tick < now:  # fell behind: skip ticks rather than bursting
                next_tick = now + period

    async def _control_step_locked(self, trigger: str) -> None:
        """One control step; the caller holds the engine lock."""
        if self._done.is_set() or not self.link.ours_to_command:
            return
        now = self.clock.now()
        self.stats.ticks += 1
        self._tell("control_step", now, trigger)
        if not await self.link.refresh_status(now):
            self._cue_times = None
            return
        if self._watchdog is None:
            self._watchdog = PerceptionWatchdog(
                self.safety.watchdog_s, now, self.safety.watchdog_startup_grace_s
            )
        if not await self._watchdog_allows(now):
            self._cue_times = None
            return
        assert self.link.pose is not None
        tick = self.engine.tick(now, self.link.pose)
        self._record_engine_events()
        cue_times, self._cue_times = self._cue_times, None
        # Latency is measured to the first command of a firing.
        latency_to = cue_times if tick.fired is not None else None
        for command in tick.commands:
            if not await self.link.send(command, latency_to):
                break
            latency_to = None

    async def _watchdog_allows(self, now: float) -> bool:
        assert self._watchdog is not None
        change = self._watchdog.check(now)
        if change is WatchdogChange.TRIPPED:
            self.stats.watchdog_trips += 1
            self._event(
                "watchdog_tripped",
                f"newest detected frame is {self._watchdog.silence(now):.2f} s old "
                f"(bound {self.safety.watchdog_s:.2f} s): stopping",
                silence_s=round(self._watchdog.silence(now), 3),
            )
            self._halt("perception watchdog")
            await self.link.send(Stop())
            return False
        if change is WatchdogChange.RECOVERED:
            self._event(
                "watchdog_recovered",
                "fresh detections again; behaviors stay halted until a rule fires again",
            )
        return not self._watchdog.tripped

    # ----------------------------------------------------------------------------- operator
    async def launch(self, name: str, params: dict[str, Any]) -> None:
        """An operator's launch: pre-empts cue behaviors; its first commands go out at once.
        Raises ValueError (unknown behavior, bad parameters) without changing anything."""
        async with self._engine_lock:
            now = self.clock.now()
            self.engine.launch(name, params, now, source="operator")
            self._tell("operator_input", now, OperatorInput("launch", name, dict(params)))
            self._record_engine_events()
            await self._control_step_locked("operator")

    async def stop_now(self, reason: str) -> list[MotionCommand]:
        """The engine's stop (cancels any behavior), sent to the robot at once; what was sent."""
        async with self._engine_lock:
            now = self.clock.now()
            self._tell("operator_input", now, OperatorInput("stop", reason=reason))
            self._tell("control_step", now, "stop")
            commands = self.engine.stop(now, reason)
            self._record_engine_events()
            sent: list[MotionCommand] = []
            if not self.link.ours_to_command:
                return sent
            for command in commands:
                if not await self.link.send(command):
                    break
                sent.append(command)
            return sent

    async def apply(self, op: OperatorInput) -> None:
        """An operator input again, as recorded (replay of a live run)."""
        if op.kind == "launch":
            await self.launch(op.name, op.params)
        elif op.kind == "stop":
            await self.stop_now(op.reason)
        else:
            await self._operator_toggle(op.kind)

    async def pause_cues(self) -> None:
        await self._operator_toggle("pause_cues")

    async def resume_cues(self) -> None:
        await self._operator_toggle("resume_cues")

    async def _operator_toggle(self, kind: str) -> None:
        async with self._engine_lock:
            now = self.clock.now()
            if kind == "pause_cues":
                self.engine.pause_cues()
                self._tell("operator_input", now, OperatorInput("pause_cues"))
            else:
                self.engine.resume_cues()
                self._tell("operator_input", now, OperatorInput("resume_cues"))
            self._record_engine_events()

    # ------------------------------------------------------------------------------ running
    def _finish(self, reason: str) -> None:
        if not self._done.is_set():
            self._end_reason = reason
            self._done.set()

    def request_stop(self) -> None:
        self._finish("stopped")

    async def _duration_timer(self, duration_s: float) -> None:
        await self.clock.sleep_until(self.clock.now() + duration_s)
        self._finish("duration")

    async def run(self, duration_s: float | None = None) -> PipelineReport:
        """Run until `duration_s` passes, the source ends, the lease is lost or `request_stop`."""
        self._detectors = DetectorThreads(self.perceiver_factory, self.detect_workers)
        try:
            await self.source.start()
            await self._detectors.warm_up()
            self.stats.started_at = self.clock.now()
            self._event("pipeline_started", "pipeline running",
                        cameras=",".join(self.source.cameras))
            await self._run_until_done(duration_s)
            await self._final_stop()
        finally:
            self.stats.finished_at = self.clock.now()
            await self.source.close()
            self._detectors.close()
        stats = self.stats.as_dict(self.clock.now(), self.source.stats() or None)
        self._event("pipeline_finished", f"pipeline finished: {self._end_reason}",
                    reason=self._end_reason)
        return PipelineReport(
            reason=self._end_reason,
            events=list(self.events.events),
            stats=stats,
            commands=list(self.link.commands),
            final_status=self.link.last_status,
            detail=self.link.robot_gone or "",
        )

    async def _run_until_done(self, duration_s: float | None) -> None:
        tasks = [asyncio.create_task(self._intake()), (control := asyncio.create_task(self._control_loop()))]
        if duration_s is not None:
            tasks.append(asyncio.create_task(self._duration_timer(duration_s)))
        try:
            await self._done.wait()
            if self._stepping:  # a begun (recorded) step ends whole, as replay runs it; at most 1 s
                await asyncio.wait({control}, timeout=1.0)
        finally:
            for task in tasks:
                task.cancel()
            for task in list(self._inflight):
                task.cancel()
            await asyncio.gather(*tasks, *self._inflight, return_exceptions=True)

    async def _final_stop(self) -> None:
        """Stop walking when the run ends (not after a lost lease: it is not ours to command;
        not when the robot ended the run: its motors are off; not while disconnected)."""
        if not self.link.ours_to_command or self.link.disconnected:
            return
        now = self.clock.now()
        commands = self.engine.stop(now, f"agent stopping ({self._end_reason})")
        self._record_engine_events()
        for command in commands or [Stop()]:
            if not await self.link.send(command):
                break
        await self.link.final_status()


def _agent_event(event: EngineEvent) -> AgentEvent:
    """An engine event as an agent event (message: its kind in words)."""
    data = dict(event.data)
    message = str(data.pop("message", "") or event.kind.replace("_", " "))
    return AgentEvent(event.time, event.kind, message, data, source="engine")
