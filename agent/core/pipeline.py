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

Safety (see agent/core/safety.py): perception watchdog, command caps, lease loss (stop commanding at
once, report, end the run without trying to get the lease back), connection loss (halt the
behaviors, try a Stop, reconnect with backoff; behaviors never resume by themselves).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from agent.core.clock import Clock, SystemClock
from agent.core.config import SafetyConfig
from agent.core.events import AgentEvent, EventLog
from agent.core.observers import PipelineObserver
from agent.core.robot import LeaseLost, Robot, RobotGone, RobotStatus, RobotUnavailable
from agent.core.safety import Backoff, PerceptionWatchdog, WatchdogChange
from agent.core.sources import FrameSource
from agent.core.stats import PipelineStats
from behaviors.commands import MotionCommand, Stop, command_to_dict
from behaviors.geometry import RobotPose
from behaviors.limits import Refused, cap_command
from perception.detection import FrameResult
from perception.frame import Frame

log = logging.getLogger(__name__)

Perceive = Callable[[Frame], FrameResult]


class CueEngine(Protocol):
    """What the pipeline needs from `behaviors.engine.CueEngine`."""

    def observe(self, result: FrameResult) -> None: ...

    def tick(self, now: float, pose: RobotPose) -> list[MotionCommand]: ...

    def halt(self, reason: str) -> None: ...

    def stop(self, now: float, reason: str) -> list[MotionCommand]: ...

    def drain_events(self) -> list[Any]: ...


# Engine event kinds: a cue appeared (in `observe`), a rule fired on it (in `tick`). Cue-to-
# command latency runs from the moment perception delivered the result that raised the cue to
# the robot accepting the first command of the rule it fired; capture-to-command from the
# camera's capture of that frame (so it adds the frame's age and the detection time).
CUE_APPEARED = "cue_fired"
RULE_FIRED = "rule_fired"


@dataclass
class PipelineReport:
    """How a run ended, what happened and what was measured."""

    # "duration", "source_ended", "lease_lost", "stopped", or a `RobotGone.exit_reason`
    # ("robot_unavailable", "cannot_connect")
    reason: str
    events: list[AgentEvent]
    stats: dict[str, Any]
    commands: list[tuple[float, MotionCommand]] = field(default_factory=list)
    final_status: RobotStatus | None = None
    detail: str = ""  # why the run ended, in words, when the robot ended it

    @property
    def ok(self) -> bool:
        return self.reason in ("duration", "source_ended", "stopped")


def _engine_event_fields(event: Any) -> tuple[str, str, float | None, dict[str, Any]]:
    """(kind, message, time, data) of an engine event, whatever its exact class."""
    if isinstance(event, dict):
        data = dict(event)
    elif hasattr(event, "__dataclass_fields__"):
        data = {name: getattr(event, name) for name in event.__dataclass_fields__}
    else:
        data = dict(vars(event)) if hasattr(event, "__dict__") else {"value": event}
    kind = str(data.pop("kind", type(event).__name__))
    message = str(data.pop("message", "") or kind.replace("_", " "))
    when = data.pop("time", None)
    extra = data.pop("data", None)
    if isinstance(extra, dict):
        data.update(extra)
    return kind, message, when if isinstance(when, (int, float)) else None, data


class Pipeline:
    """Runs perception and behaviors against a robot until told to stop or the source ends."""

    def __init__(
        self,
        source: FrameSource,
        perceiver_factory: Callable[[], Perceive],
        engine: CueEngine,
        robot: Robot,
        safety: SafetyConfig,
        clock: Clock | None = None,
        events: EventLog | None = None,
        source_stats: Callable[[], dict[str, Any]] | None = None,
        observers: list[PipelineObserver] | None = None,
    ) -> None:
        self.source = source
        self.perceiver_factory = perceiver_factory
        self.engine = engine
        self.robot = robot
        self.safety = safety
        self.clock = clock or SystemClock()
        self.events = events or EventLog()
        self.observers: list[PipelineObserver] = list(observers or [])
        # (frame, result) callbacks for each result the engine observed (live views).
        self.result_listeners: list[Callable[[Frame, FrameResult], None]] = []
        self.events.listeners.append(self._tell_event)
        self._source_stats = source_stats
        self.stats = PipelineStats()
        self.limits = safety.motion_limits()  # the agent's caps: the last word on every command
        self.stop_budget = safety.stop_budget()
        self.commands: list[tuple[float, MotionCommand]] = []
        self._thread_perceiver = threading.local()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._free_workers = asyncio.Semaphore(safety.detect_workers)
        self._engine_lock = asyncio.Lock()  # one engine input at a time (see module docstring)
        self._inflight: set[asyncio.Task[None]] = set()
        self._done = asyncio.Event()
        self._end_reason = "stopped"
        self._watchdog: PerceptionWatchdog | None = None
        self._pose: RobotPose | None = None
        self._last_status: RobotStatus | None = None
        self._latest_result_time: float | None = None  # capture time of newest observed result
        # (capture time, result time) of the frame that raised a cue, until a rule acts on it.
        self._cue_times: tuple[float, float] | None = None
        self._lease_lost = False
        self._robot_gone: str | None = None  # why the robot can no longer be driven (ends the run)
        self._unavailable: str | None = None  # why the robot cannot take commands now
        self._reconnect = Backoff(safety.reconnect_backoff_s, safety.reconnect_backoff_max_s)
        self._reconnect_at: float | None = None  # set while disconnected

    # ---------------------------------------------------------------------------- observers
    def _tell(self, method: str, *args: Any) -> None:
        for observer in self.observers:
            try:
                getattr(observer, method)(*args)
            except Exception:  # an observer must never take the control path down
                log.exception("pipeline observer failed", extra={"event": "observer_failed",
                                                                 "observer": type(observer).__name__})

    def _tell_event(self, event: AgentEvent) -> None:
        self._tell("event", event)

    # ------------------------------------------------------------------------------ events
    def _event(self, kind: str, message: str, **data: Any) -> AgentEvent:
        return self.events.add(AgentEvent(self.clock.now(), kind, message, data))

    def _drain_engine_events(self) -> set[str]:
        """Record the engine's events; return their kinds."""
        kinds: set[str] = set()
        for raw in self.engine.drain_events():
            kind, message, when, data = _engine_event_fields(raw)
            kinds.add(kind)
            self.events.add(
                AgentEvent(when if when is not None else self.clock.now(), kind, message,
                           data, source="engine")
            )
        return kinds

    # --------------------------------------------------------------------------- detection
    def _perceive_in_thread(self, frame: Frame) -> FrameResult:
        # One perceiver (one interpreter) per worker thread: interpreters are not thread-safe.
        perceive = getattr(self._thread_perceiver, "perceive", None)
        if perceive is None:
            perceive = self._thread_perceiver.perceive = self.perceiver_factory()
        return perceive(frame)

    def _warm_thread(self, barrier: threading.Barrier) -> None:
        if getattr(self._thread_perceiver, "perceive", None) is None:
            self._thread_perceiver.perceive = self.perceiver_factory()
            # A first inference prepares the interpreter's kernels: do it before real frames.
            blank = Frame("warm-up", np.zeros((480, 640), np.uint8), 0.0, 0.0)
            self._thread_perceiver.perceive(blank)
        # Hold this thread until every worker has started, so each gets its own perceiver.
        barrier.wait(timeout=60)

    async def _warm_up(self) -> None:
        workers = self.safety.detect_workers
        barrier = threading.Barrier(workers)
        loop = asyncio.get_running_loop()
        assert self._pool is not None
        await asyncio.gather(
            *(loop.run_in_executor(self._pool, self._warm_thread, barrier) for _ in range(workers))
        )

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
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._pool, self._perceive_in_thread, frame)
        async with self._engine_lock:
            finished = self.clock.now()
            if self._too_old(frame, finished, counters, "after_detection"):
                return
            result.age_at_detection_s = age_at_detection
            self.stats.age_at_result_s.add(finished - frame.acquisition_time_local)
            self.stats.detect_s.add(result.detect_ms / 1000.0)
            counters.detected += 1
            for label in {s.label for s in result.sightings}:
                near = [s.distance_m for s in result.sightings
                        if s.label == label and s.distance_m is not None]
                self.stats.saw(label, min(near) if near else None)
            if self._lease_lost or self._done.is_set():
                return
            self._tell("result_observed", finished, result)
            for listener in self.result_listeners:
                try:
                    listener(frame, result)
                except Exception:
                    log.exception("result listener failed", extra={"event": "listener_failed"})
            self.engine.observe(result)
            if self._watchdog is not None:
                # Freshness is the capture time: the watchdog bounds how old the newest
                # information is, whatever queueing or detection time came after the camera.
                self._watchdog.feed(result.time_local)
            self._latest_result_time = max(self._latest_result_time or 0.0, result.time_local)
            if CUE_APPEARED in self._drain_engine_events():
                self._cue_times = (result.time_local, finished)
                # React now rather than at the next tick.
                await self._control_step_locked("cue")

    async def _run_detection(self, frame: Frame) -> None:
        try:
            await self._detect_and_observe(frame)
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
                if self._inflight:
                    await asyncio.gather(*self._inflight, return_exceptions=True)
                self._finish("source_failed")
                return
            task = asyncio.create_task(self._run_detection(frame))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        self._finish("source_ended")

    # ----------------------------------------------------------------------------- control
    async def _control_loop(self) -> None:
        period = 1.0 / self.safety.tick_hz
        next_tick = self.clock.now()
        while not self._done.is_set():
            await self.clock.sleep_until(next_tick)
            if self._done.is_set():
                break
            async with self._engine_lock:
                await self._control_step_locked("tick")
            next_tick += period
            now = self.clock.now()
            if next_tick < now:  # fell behind: skip ticks rather than bursting
                next_tick = now + period

    async def step_now(self) -> None:
        """Run a control step at once (e.g. right after an operator launch)."""
        async with self._engine_lock:
            await self._control_step_locked("operator")

    async def stop_now(self, reason: str) -> list[MotionCommand]:
        """The engine's stop (cancels any behavior), sent to the robot at once; what was sent."""
        async with self._engine_lock:
            now = self.clock.now()
            self._tell("control_step", now, "stop")
            commands = self.engine.stop(now, reason)
            self._drain_engine_events()
            sent: list[MotionCommand] = []
            if self._lease_lost:
                return sent
            for command in commands:
                if not await self._send(command):
                    break
                sent.append(command)
            return sent

    async def _control_step_locked(self, trigger: str) -> None:
        """One control step; the caller holds the engine lock."""
        if self._done.is_set() or self._lease_lost:
            return
        now = self.clock.now()
        self.stats.ticks += 1
        self._tell("control_step", now, trigger)
        if not await self._refresh_status(now):
            self._cue_times = None
            return
        assert self._watchdog is not None and self._pose is not None
        change = self._watchdog.check(now)
        if change is WatchdogChange.TRIPPED:
            await self._trip_watchdog(now)
            return
        if change is WatchdogChange.RECOVERED:
            self._event(
                "watchdog_recovered",
                "fresh detections again; behaviors stay halted until a rule fires again",
            )
        if self._watchdog.tripped:
            self._cue_times = None
            return
        commands = self.engine.tick(now, self._pose)
        fired = RULE_FIRED in self._drain_engine_events()
        cue_times, self._cue_times = self._cue_times, None
        for command in commands:
            if not await self._send(command, cue_times if fired else None):
                break
            fired = False  # latency is to the first command of the firing

    async def _refresh_status(self, now: float) -> bool:
        """Poll the robot; False when it cannot be commanded (and handle why)."""
        if self._reconnect_at is not None and now < self._reconnect_at:
            return False
        try:
            status = await self.robot.status()
        except LeaseLost as exc:
            self._tell("robot_status", now, None, exc)
            self._on_lease_lost(str(exc))
            return False
        except RobotGone as exc:
            self._tell("robot_status", now, None, exc)
            self._on_robot_gone(exc)
            return False
        except RobotUnavailable as exc:
            self._tell("robot_status", now, None, exc)
            self._on_connection_lost(now, str(exc))
            return False
        self._tell("robot_status", now, status, None)
        if self._reconnect_at is not None:
            self._reconnect_at = None
            self._reconnect.reset()
            self._event(
                "reconnected", "robot reachable again; behaviors stay halted until a rule fires"
            )
        self._last_status = status
        self._pose = RobotPose(status.odom_x, status.odom_y, status.odom_yaw)
        if self._watchdog is None:
            self._watchdog = PerceptionWatchdog(
                self.safety.watchdog_s, now, self.safety.watchdog_startup_grace_s
            )
        problem = None
        if not status.has_lease:
            problem = "no lease"
        elif status.estopped:
            problem = "E-Stop engaged"
        elif not status.powered:
            problem = "motors off"
        if problem is not None:
            if self._unavailable != problem:
                self._unavailable = problem
                self.engine.halt(problem)
                self._drain_engine_events()
                self._event("robot_unavailable", f"robot cannot move: {problem}; behaviors halted",
                            reason=problem)
            return False
        if self._unavailable is not None:
            self._event("robot_available", f"robot can move again (was: {self._unavailable})")
            self._unavailable = None
        return True

    async def _trip_watchdog(self, now: float) -> None:
        assert self._watchdog is not None
        self.stats.watchdog_trips += 1
        self._event(
            "watchdog_tripped",
            f"newest detected frame is {self._watchdog.silence(now):.2f} s old "
            f"(bound {self.safety.watchdog_s:.2f} s): stopping",
            silence_s=round(self._watchdog.silence(now), 3),
        )
        self.engine.halt("perception watchdog")
        self._drain_engine_events()
        self._cue_times = None
        await self._send(Stop())

    async def _send(
        self, command: MotionCommand, cue_times: tuple[float, float] | None = None
    ) -> bool:
        """Send one command through the caps; False if the robot became unavailable."""
        checked = cap_command(command, self.limits, self._pose, self.stop_budget)
        if isinstance(checked, Refused):
            self.stats.commands_refused += 1
            self._tell("command", self.clock.now(), command, f"refused: {checked.reason}")
            self._event("command_refused", f"refused {command.kind}: {checked.reason}",
                        command=command.kind)
            return True
        try:
            await self.robot.send(checked)
        except LeaseLost as exc:
            self._tell("command", self.clock.now(), checked, f"failed: {exc}")
            self._on_lease_lost(str(exc))
            return False
        except RobotUnavailable as exc:
            self._tell("command", self.clock.now(), checked, f"failed: {exc}")
            self._on_connection_lost(self.clock.now(), str(exc))
            return False
        sent_at = self.clock.now()
        self.stats.commands_sent += 1
        self.commands.append((sent_at, checked))
        self._tell("command", sent_at, checked, "sent")
        if self._latest_result_time is not None:
            self.stats.age_at_command_s.add(sent_at - self._latest_result_time)
        if cue_times is not None:
            captured, detected = cue_times
            self.stats.capture_to_command_s.add(sent_at - captured)
            self.stats.cue_to_command_s.add(sent_at - detected)
        log.debug("command sent", extra={"event": "command", **_flat(command_to_dict(checked))})
        return True

    # ------------------------------------------------------------------------ robot trouble
    def _on_lease_lost(self, reason: str) -> None:
        if self._lease_lost:
            return
        self._lease_lost = True
        self.engine.halt("lease lost")
        self._drain_engine_events()
        self._event("lease_lost", reason)
        self._finish("lease_lost")

    def _on_robot_gone(self, exc: RobotGone) -> None:
        if self._robot_gone is not None:
            return
        self._robot_gone = str(exc)
        self.engine.halt("robot gone")
        self._drain_engine_events()
        self._event("robot_gone", str(exc), reason=exc.exit_reason)
        self._finish(exc.exit_reason)

    def _on_connection_lost(self, now: float, reason: str) -> None:
        first = self._reconnect_at is None
        wait = self._reconnect.next()
        self._reconnect_at = now + wait
        if first:
            self.engine.halt("connection lost")
            self._drain_engine_events()
            self._event(
                "connection_lost",
                f"{reason}; behaviors halted, reconnecting (next try in {wait:.1f} s)",
                reason=reason,
            )
            # The robot stops by itself when velocity deadlines pass; still try to say so.
            task = asyncio.get_running_loop().create_task(self._try_stop())
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        else:
            log.info(
                "still disconnected",
                extra={"event": "reconnect_wait", "attempt": self._reconnect.attempts,
                       "wait_s": wait, "reason": reason},
            )

    async def _try_stop(self) -> None:
        try:
            await self.robot.send(Stop())
        except RobotUnavailable:
            pass

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
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.safety.detect_workers, thread_name_prefix="detect"
        )
        try:
            await self._warm_up()
            self.stats.started_at = self.clock.now()
            self._event("pipeline_started", "pipeline running",
                        cameras=",".join(self.source.cameras))
            tasks = [asyncio.create_task(self._intake()), asyncio.create_task(self._control_loop())]
            if duration_s is not None:
                tasks.append(asyncio.create_task(self._duration_timer(duration_s)))
            try:
                await self._done.wait()
            finally:
                for task in tasks:
                    task.cancel()
                for task in list(self._inflight):
                    task.cancel()
                await asyncio.gather(*tasks, *self._inflight, return_exceptions=True)
            await self._final_stop()
        finally:
            self.stats.finished_at = self.clock.now()
            await self.source.close()
            self._pool.shutdown(wait=True, cancel_futures=True)
        stats = self.stats.as_dict(
            self.clock.now(), self._source_stats() if self._source_stats else None
        )
        self._event("pipeline_finished", f"pipeline finished: {self._end_reason}",
                    reason=self._end_reason)
        return PipelineReport(
            reason=self._end_reason,
            events=list(self.events.events),
            stats=stats,
            commands=list(self.commands),
            final_status=self._last_status,
            detail=self._robot_gone or "",
        )

    async def _final_stop(self) -> None:
        """Stop walking when the run ends (not after a lost lease: it is not ours to command;
        not when the robot ended the run: its motors are off)."""
        if self._lease_lost or self._robot_gone is not None or self._reconnect_at is not None:
            return
        now = self.clock.now()
        commands = self.engine.stop(now, f"agent stopping ({self._end_reason})")
        self._drain_engine_events()
        for command in commands or [Stop()]:
            if not await self._send(command):
                break
        try:
            self._last_status = await self.robot.status()
        except RobotUnavailable as exc:
            self._tell("robot_status", self.clock.now(), None, exc)
        else:
            self._tell("robot_status", self.clock.now(), self._last_status, None)


def _flat(data: dict[str, Any]) -> dict[str, Any]:
    return {f"cmd_{k}" if k != "kind" else "cmd": v for k, v in data.items()}
