"""How replay drives the pipeline's time, frames and robot, so commands never depend on how fast
the machine is.

The pipeline runs unchanged with `detect_workers = 1`: it asks the source for the next frame only
once the previous one is detected, observed and reacted to, and nothing moves the clock while
it works. The source therefore decides, between two frames, what time it is and which control
ticks run. Two ways:

`TimedFrameSource` (videos, image folders, recordings replayed frame by frame): time is the
frame's capture time; before each frame the `FrameClock` is advanced to it, running every
control tick due on the way at its exact tick time (`tick_hz` on recorded time).

`RecordedRunSource` (recordings of live runs, the default for them): reproduces the live run's
own sequence of engine inputs. The live pipeline recorded, in order, each result the engine
observed (with the pipeline-clock time) and each control step (time, trigger) with the robot
status it acted on. Replay feeds exactly the frames the live engine observed (not the ones the
live source skipped or dropped as stale), each at its recorded observation time, releases each
periodic control step at its recorded time (`ScriptedClock`), and answers the robot status
calls with the recorded statuses (`ReplayRobot`). Same frames, same detector, same times, same
statuses: the same commands. What the recording does not hold cannot be redone: an operator's
launches and stops during the live run are listed (`LiveRun.unreproducible`), not replayed.

Detection itself runs ahead on every core (`DetectAhead`): a result depends only on its frame,
so computing it early changes nothing but the wall time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from agent.core.clock import FrameClock
from agent.core.observers import PipelineObserver
from agent.core.robot import ConnectionLost, EStopped, LeaseLost, RobotStatus, RobotUnavailable
from agent.replay.dry_run import DryRunRobot
from agent.replay.mcap import (
    McapRecording,
    RecordedCommand,
    RecordedEvent,
    RecordedFrame,
    RecordedItem,
    RecordedObservation,
    RecordedStatus,
    RecordedStep,
)
from agent.replay.reading import FrameStream, ReadReport, read_in_thread
from perception.frame import Frame

log = logging.getLogger(__name__)

# How long (real time) to wait for the pipeline's control loop to come back to the clock.
SETTLE_TIMEOUT_S = 30.0
# Frames taken but not yet observed kept per camera (live results can arrive out of order).
PENDING_PER_CAMERA = 8


FrameKey = tuple[str, int, float]


def frame_key(frame: Frame) -> FrameKey:
    return (frame.camera, frame.seq, frame.acquisition_time_local)


class DetectAhead:
    """Detects frames on `workers` threads as soon as the reader has them, ahead of the pipeline.

    The pipeline still takes frames one at a time and in order (that is what makes replay
    deterministic); only the detector's work moves earlier, so a replay runs as fast as the
    detector, not detector + decode + engine in series. A result depends only on its frame, so
    computing it earlier or on another thread changes nothing. Each worker thread has its own
    perceiver (interpreters are not thread-safe).
    """

    def __init__(self, make_perceiver: Callable[[], Callable[[Frame], Any]], workers: int) -> None:
        self._make = make_perceiver
        self._local = threading.local()
        self.workers = max(1, workers)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="detect-ahead"
        )
        self._futures: dict[FrameKey, concurrent.futures.Future[Any]] = {}
        self._lock = threading.Lock()
        self.ahead_hits = 0

    def _perceive(self, frame: Frame) -> Any:
        perceive = getattr(self._local, "perceive", None)
        if perceive is None:
            perceive = self._local.perceive = self._make()
        return perceive(frame)

    def submit(self, frame: Frame) -> None:
        """Start detecting `frame` (called by the reader thread as it reads frames)."""
        if frame.is_depth:
            return
        with self._lock:
            self._futures[frame_key(frame)] = self._pool.submit(self._perceive, frame)

    def forget(self, frame: Frame) -> None:
        """`frame` will never be asked for (a frame the live run did not observe)."""
        with self._lock:
            future = self._futures.pop(frame_key(frame), None)
        if future is not None:
            future.cancel()

    def warm(self) -> None:
        """Load one perceiver per worker thread now, before any frame is timed."""
        workers = self.workers
        barrier = threading.Barrier(workers)

        def load() -> None:
            if getattr(self._local, "perceive", None) is None:
                self._local.perceive = self._make()
            barrier.wait(timeout=60)  # hold the thread so each worker loads its own

        for future in [self._pool.submit(load) for _ in range(workers)]:
            future.result()

    def perceive(self, frame: Frame) -> Any:
        """The pipeline's perceive: the result computed ahead, or computed now (on a worker,
        which already has its perceiver) if there is none."""
        with self._lock:
            future = self._futures.pop(frame_key(frame), None)
        if future is None or future.cancelled():
            future = self._pool.submit(self._perceive, frame)
        else:
            self.ahead_hits += 1
        return future.result()

    def perceiver_factory(self) -> Callable[[], Callable[[Frame], Any]]:
        return lambda: self.perceive

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class Pacer:
    """Real-time pacing: `--speed 1` plays a recording at the pace it was recorded; None: fast."""

    def __init__(self, speed: float | None) -> None:
        self.speed = speed
        self._origin: tuple[float, float] | None = None  # (recorded time, monotonic time)

    async def wait_for(self, recorded_time: float) -> None:
        if self.speed is None:
            return
        now = time.monotonic()
        if self._origin is None:
            self._origin = (recorded_time, now)
            return
        due = self._origin[1] + (recorded_time - self._origin[0]) / self.speed
        if due > now:
            await asyncio.sleep(due - now)


class ScriptedClock:
    """Virtual time set by the replay driver; sleepers run only when the driver releases them.

    `sleep_until` parks the caller whatever its deadline: in a recorded run, when the control
    loop ran is a recorded fact, not something to recompute from deadlines.
    """

    def __init__(self, start: float) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._parked = asyncio.Event()

    def now(self) -> float:
        return self._now

    def set(self, when: float) -> None:
        self._now = when

    async def sleep_until(self, when: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._order), future))
        self._parked.set()
        await future

    def _live_sleepers(self) -> bool:
        while self._sleepers and self._sleepers[0][2].done():  # cancelled tasks
            heapq.heappop(self._sleepers)
        return bool(self._sleepers)

    async def release(self, at: float) -> bool:
        """Set the time to `at` and run the earliest sleeper until it sleeps again.

        False if nobody was asleep within the settle timeout (the pipeline is shutting down).
        """
        self._now = at
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while not self._live_sleepers():
            self._parked.clear()
            try:
                await asyncio.wait_for(self._parked.wait(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                return False
        _, _, future = heapq.heappop(self._sleepers)
        self._parked.clear()
        future.set_result(None)
        # The woken task has finished its step when it parks again (or it has ended).
        while not self._live_sleepers():
            self._parked.clear()
            try:
                await asyncio.wait_for(self._parked.wait(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
        return True


_ERRORS: dict[str, type[RobotUnavailable]] = {
    "LeaseLost": LeaseLost,
    "ConnectionLost": ConnectionLost,
    "EStopped": EStopped,
    "RobotUnavailable": RobotUnavailable,
}


class ReplayRobot(DryRunRobot):
    """`DryRunRobot` that answers status calls with a live run's recorded statuses when given.

    Without scripted statuses (video, image folders, frame-by-frame replay) it reports the
    dry-run body that moves as the commands ask.
    """

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self._scripted: deque[RecordedStatus] = deque()
        self.status_calls_unscripted = 0

    def script(self, statuses: list[RecordedStatus]) -> None:
        """The statuses for the next step(s), in order; leftovers of the previous are dropped."""
        self._scripted = deque(statuses)

    async def status(self) -> RobotStatus:
        if self._scripted:
            recorded = self._scripted.popleft()
            if recorded.error_kind is not None:
                raise _ERRORS.get(recorded.error_kind, RobotUnavailable)(recorded.error_message)
            if recorded.status is not None:
                self._advance(self.clock.now())
                return recorded.status
        self.status_calls_unscripted += 1
        return await super().status()


@dataclass
class LiveRun:
    """What the live run did, as recorded: for comparing a replay with it."""

    commands: list[RecordedCommand] = field(default_factory=list)
    # When each command was decided: the time of the observation or control step it came from
    # (live command times are taken after the robot's RPC returned).
    issued_at: list[float] = field(default_factory=list)
    events: list[RecordedEvent] = field(default_factory=list)
    observations: int = 0
    steps: int = 0
    cue_steps: int = 0
    missing_frames: int = 0  # observations whose frame is not in the recording
    unreproducible: list[str] = field(default_factory=list)  # operator steps, etc.
    end_time: float | None = None


class _CueStepTimer(PipelineObserver):
    """Moves the scripted clock to the live cue step's time when its result is observed.

    Live, a result that raised a cue is reacted to within the same engine-lock region, a few
    microseconds after the observation; the step reads the clock again. Replay reproduces that
    reading exactly instead of reusing the observation time.
    """

    def __init__(self, source: RecordedRunSource) -> None:
        self.source = source
        self.replayed_steps: dict[str, int] = {}

    def result_observed(self, now: float, result: Any) -> None:
        pending = self.source._cue_time_for
        if pending is not None and pending[0] == (result.camera, result.seq):
            self.source.clock.set(pending[1])
            self.source._cue_time_for = None

    def control_step(self, now: float, trigger: str) -> None:
        self.replayed_steps[trigger] = self.replayed_steps.get(trigger, 0) + 1


class _Peekable:
    def __init__(self, items: AsyncIterator[RecordedItem]) -> None:
        self._items = items
        self._head: list[RecordedItem] = []

    async def peek(self) -> RecordedItem | None:
        if not self._head:
            try:
                self._head.append(await self._items.__anext__())
            except StopAsyncIteration:
                return None
        return self._head[0]

    async def next(self) -> RecordedItem | None:
        item = await self.peek()
        if item is not None:
            self._head.pop()
        return item


class RecordedRunSource:
    """Replays a recorded live run's engine inputs (see the module docstring).

    Frames come from the recording in file order; a frame is handed to the pipeline when the
    live engine observed it, at the time it observed it. Frames the live pipeline took but
    never observed (stale) are passed over, as live.
    """

    def __init__(
        self,
        recording: McapRecording,
        clock: ScriptedClock,
        robot: ReplayRobot,
        pacer: Pacer | None = None,
        detect_ahead: DetectAhead | None = None,
        read_ahead: int = 64,
    ) -> None:
        self.recording = recording
        self.cameras = list(recording.cameras)
        self.report: ReadReport = recording.report
        self.clock = clock
        self.robot = robot
        self.pacer = pacer or Pacer(None)
        self.detect_ahead = detect_ahead
        self.read_ahead = read_ahead
        self.live = LiveRun()
        self._stop = threading.Event()
        self._cue_time_for: tuple[tuple[str, int], float] | None = None
        self._input_time: float | None = None  # time of the live input being read
        self._first_after_input: float | None = None  # earliest command/event time since then

    def observer(self) -> PipelineObserver:
        """Add this to the pipeline's observers: it times cue reactions as they were live."""
        return _CueStepTimer(self)

    def _on_read(self, item: RecordedItem) -> None:
        if self.detect_ahead is not None and isinstance(item, RecordedFrame):
            self.detect_ahead.submit(item.frame)

    def _drop_pending(self, pending: dict[tuple[str, int], Frame], key: tuple[str, int]) -> None:
        frame = pending.pop(key)
        if self.detect_ahead is not None:
            self.detect_ahead.forget(frame)

    async def _take_followers(
        self, items: _Peekable, pending: dict[tuple[str, int], Frame]
    ) -> tuple[list[RecordedStatus], float | None]:
        """Consume what belongs to the input just read, up to the next observation or step of
        its own: the statuses it got, the time of the cue step it triggered (if any), and the
        frames, commands and events recorded meanwhile."""
        statuses: list[RecordedStatus] = []
        cue_time: float | None = None
        while True:
            item = await items.peek()
            if item is None or isinstance(item, RecordedObservation):
                return statuses, cue_time
            if isinstance(item, RecordedStep) and item.trigger != "cue":
                return statuses, cue_time
            await items.next()
            if isinstance(item, RecordedStatus):
                statuses.append(item)
            elif isinstance(item, RecordedStep):
                self.live.steps += 1
                self.live.cue_steps += 1
                cue_time = item.time if cue_time is None else cue_time
                self._input_time = item.time
                self._first_after_input = None
            else:
                self._note(item, pending)

    def _note(self, item: RecordedItem, pending: dict[tuple[str, int], Frame]) -> None:
        live = self.live
        if isinstance(item, RecordedFrame):
            pending[(item.frame.camera, item.frame.seq)] = item.frame
        elif isinstance(item, RecordedCommand):
            live.commands.append(item)
            live.issued_at.append(self._input_time if self._input_time is not None else item.time)
            self._first_after_input = min(self._first_after_input or item.time, item.time)
        elif isinstance(item, RecordedEvent):
            live.events.append(item)
            self._first_after_input = min(self._first_after_input or item.time, item.time)

    async def frames(self) -> AsyncIterator[Frame]:
        # Items are read and decoded on a helper thread, `read_ahead` items ahead.
        items = _Peekable(
            read_in_thread(
                self.recording.items, self.read_ahead, self._stop, self._on_read,
                name="replay-recording", report=self.report,
            )
        )
        pending: dict[tuple[str, int], Frame] = {}
        last_time: float | None = None
        while not self._stop.is_set():
            item = await items.next()
            if item is None:
                break
            if isinstance(item, RecordedObservation):
                self.live.observations += 1
                self._input_time = item.time
                self._first_after_input = None
                statuses, cue_time = await self._take_followers(items, pending)
                key = (item.result.camera, item.result.seq)
                frame = pending.pop(key, None)
                # Live detection ran on several workers, so results may come a little out of
                # frame order; a frame still unobserved after several newer ones of its camera
                # was dropped live (stale): forget it.
                same_camera = sorted(k for k in pending if k[0] == key[0])
                for old in same_camera[: max(0, len(same_camera) - PENDING_PER_CAMERA)]:
                    self._drop_pending(pending, old)
                if frame is None:
                    self.live.missing_frames += 1
                    self.report.lost(
                        f"engine step {item.step}",
                        f"frame {key[0]} #{key[1]} observed live is not in the recording; "
                        "replay skips that observation",
                    )
                    continue
                await self.pacer.wait_for(item.time)
                self.clock.set(item.time)
                self.robot.script(statuses)
                # If the live result raised a cue, its reaction step ran at `cue_time`: the
                # observer moves the clock there once the replayed result is observed.
                self._cue_time_for = (key, cue_time) if cue_time is not None else None
                last_time = item.time
                yield frame
            elif isinstance(item, RecordedStep) and item.trigger == "tick":
                self.live.steps += 1
                self._input_time = item.time
                self._first_after_input = None
                statuses, _ = await self._take_followers(items, pending)
                await self.pacer.wait_for(item.time)
                self.robot.script(statuses)
                last_time = item.time
                if not await self.clock.release(item.time):
                    log.warning("replay: the control loop did not come back; stopping")
                    break
            elif isinstance(item, RecordedStep):
                # An operator's launch or stop (or a cue step without its observation): the
                # operator's input is not in the recording, so replay cannot redo it.
                self.live.steps += 1
                self.live.unreproducible.append(f"{item.trigger} step at {item.time:.3f}")
                self._input_time = item.time
                self._first_after_input = None
                await self._take_followers(items, pending)
            elif isinstance(item, RecordedStatus):
                pass  # a status outside any step (the final one at shutdown)
            else:
                self._note(item, pending)
        # The live run's final stop came after its last input: at the first thing recorded
        # after it (the engine's stop events carry that time; the Stop command is sent then).
        end = self._first_after_input if self._first_after_input is not None else last_time
        self.live.end_time = end
        if end is not None and end > self.clock.now():
            self.clock.set(end)
        self.robot.script([])
        for key in list(pending):
            self._drop_pending(pending, key)

    async def close(self) -> None:
        self._stop.set()


class TimedFrameSource:
    """Frames of any replay source in order, with time following their capture times.

    Before each frame the `FrameClock` advances to the frame's time, which runs every control
    tick due before it at its exact tick time. Frames whose time goes backwards (a second
    camera slightly behind) are passed at the current time: time never runs backwards.
    """

    def __init__(self, inner: FrameStream, clock: FrameClock, pacer: Pacer | None = None) -> None:
        self.inner = inner
        self.cameras = list(inner.cameras)
        self.report: ReadReport = inner.report
        self.clock = clock
        self.pacer = pacer or Pacer(None)

    async def frames(self) -> AsyncIterator[Frame]:
        async for frame in self.inner.frames():
            await self.pacer.wait_for(frame.acquisition_time_local)
            await self.clock.advance_to(frame.acquisition_time_local)
            yield frame
        self.cameras = list(self.inner.cameras)

    async def close(self) -> None:
        await self.inner.close()
