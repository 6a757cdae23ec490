"""Replaying a recorded live run (`--mode recorded-run`, the default for `run --record` files).

Reproduces the live run's own sequence of engine inputs. The live pipeline recorded, in order,
each result the engine observed (with the pipeline-clock time) and each control step (time,
trigger) with the robot status it acted on. Replay feeds exactly the frames the live engine
observed (not the ones the live source skipped or dropped as stale), each at its recorded
observation time, releases each periodic control step at its recorded time (`ScriptedClock`),
and answers the robot status calls with the recorded statuses (`ReplayRobot`). Operators'
launches, stops, pauses and resumes are engine inputs too: each is given to the pipeline again
(`operator_sink`, the pipeline's `apply`) at its recorded time, with the statuses its own control
step got. Same frames, same detector, same times, same statuses, same operator inputs: the same
commands. Recordings made before operator inputs were recorded hold only the operator's control
steps: those are listed (`LiveRun.unreproducible`), not replayed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agent.core.observers import OperatorInput, PipelineObserver
from agent.replay.detect_ahead import DetectAhead
from agent.replay.dry_run import ReplayRobot
from agent.replay.mcap import McapRecording
from agent.replay.reading import ReadReport, read_in_thread
from agent.replay.recorded import (
    RecordedCommand,
    RecordedEvent,
    RecordedFrame,
    RecordedItem,
    RecordedObservation,
    RecordedOperator,
    RecordedStatus,
    RecordedStep,
)
from agent.replay.timing import Pacer, ScriptedClock
from perception.frame import Frame

log = logging.getLogger(__name__)

# Frames taken but not yet observed kept per camera (live results can arrive out of order).
PENDING_PER_CAMERA = 8

_Pending = dict[tuple[str, int], Frame]  # frames read, not yet observed: (camera, seq) -> frame


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
    operator_inputs: int = 0  # operator launches, stops, pauses and resumes (replayed)
    unreproducible: list[str] = field(default_factory=list)  # operator steps of old recordings
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
        self.one_at_a_time = True  # replay decides the time between frames
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
        # Gives a recorded operator input to the pipeline again (set once the pipeline exists).
        self.operator_sink: Callable[[OperatorInput], Awaitable[None]] | None = None

    def observer(self) -> PipelineObserver:
        """Add this to the pipeline's observers: it times cue reactions as they were live."""
        return _CueStepTimer(self)

    def _on_read(self, item: RecordedItem) -> None:
        if self.detect_ahead is not None and isinstance(item, RecordedFrame):
            self.detect_ahead.submit(item.frame)

    def _drop_pending(self, pending: _Pending, key: tuple[str, int]) -> None:
        frame = pending.pop(key)
        if self.detect_ahead is not None:
            self.detect_ahead.forget(frame)

    def _begin_input(self, time: float) -> None:
        """A live engine input (observation or step) at `time`: what follows came from it."""
        self._input_time = time
        self._first_after_input = None

    async def _take_followers(
        self, items: _Peekable, pending: _Pending
    ) -> tuple[list[RecordedStatus], float | None]:
        """Consume what belongs to the input just read, up to the next observation or step of
        its own: the statuses it got, the time of the cue step it triggered (if any), and the
        frames, commands and events recorded meanwhile."""
        statuses: list[RecordedStatus] = []
        cue_time: float | None = None
        while True:
            item = await items.peek()
            if item is None or isinstance(item, (RecordedObservation, RecordedOperator)):
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
                self._begin_input(item.time)
            else:
                self._note(item, pending)

    def _note(self, item: RecordedItem, pending: _Pending) -> None:
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
        pending: _Pending = {}
        last_time: float | None = None
        while not self._stop.is_set():
            item = await items.next()
            if item is None:
                break
            if isinstance(item, RecordedObservation):
                frame = await self._observation(item, items, pending)
                if frame is None:
                    continue
                last_time = item.time
                yield frame
            elif isinstance(item, RecordedStep) and item.trigger == "tick":
                last_time = item.time
                if not await self._tick(item, items, pending):
                    log.warning("replay: the control loop did not come back; stopping")
                    break
            elif isinstance(item, RecordedOperator) and self.operator_sink is not None:
                last_time = item.time
                await self._operator(item, items, pending)
            elif isinstance(item, RecordedStep):
                # An operator's launch or stop from a recording without its input (or a cue step
                # without its observation): replay cannot redo it.
                self.live.steps += 1
                self.live.unreproducible.append(f"{item.trigger} step at {item.time:.3f}")
                self._begin_input(item.time)
                await self._take_followers(items, pending)
            elif not isinstance(item, RecordedStatus):  # a lone status: the final one at shutdown
                self._note(item, pending)
        self._finish(pending, last_time)

    async def _operator(self, item: RecordedOperator, items: _Peekable, pending: _Pending) -> None:
        """Give one live operator input to the pipeline again, at its time, with the statuses of
        the control step it ran (a launch's first commands go out at once, as live)."""
        self.live.operator_inputs += 1
        self._begin_input(item.time)
        # What the input did (events, commands) is recorded before its own control step, which
        # the pipeline runs again when it takes the input.
        while True:
            follower = await items.peek()
            if isinstance(follower, RecordedStep) and follower.trigger in ("operator", "stop"):
                await items.next()
                self.live.steps += 1
                break
            if follower is None or isinstance(
                follower, (RecordedObservation, RecordedOperator, RecordedStep, RecordedStatus)
            ):
                break
            self._note(await items.next(), pending)  # type: ignore[arg-type]
        statuses, _ = await self._take_followers(items, pending)
        await self.pacer.wait_for(item.time)
        self.clock.set(item.time)
        self.robot.script(statuses)
        assert self.operator_sink is not None
        try:
            await self.operator_sink(item.op)
        except ValueError as exc:  # refused live too would not have been recorded: say so
            self.report.lost(f"engine step {item.step}", f"operator {item.op.kind} refused: {exc}")

    async def _observation(
        self, item: RecordedObservation, items: _Peekable, pending: _Pending
    ) -> Frame | None:
        """Set up the replay of one live observation: its frame at its time with its statuses;
        None when its frame is not in the recording."""
        self.live.observations += 1
        self._begin_input(item.time)
        statuses, cue_time = await self._take_followers(items, pending)
        key = (item.result.camera, item.result.seq)
        frame = pending.pop(key, None)
        # Live detection ran on several workers, so results may come a little out of frame
        # order; a frame still unobserved after several newer ones of its camera was dropped
        # live (stale): forget it.
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
            return None
        await self.pacer.wait_for(item.time)
        self.clock.set(item.time)
        self.robot.script(statuses)
        # If the live result raised a cue, its reaction step ran at `cue_time`: the observer
        # moves the clock there once the replayed result is observed.
        self._cue_time_for = (key, cue_time) if cue_time is not None else None
        return frame

    async def _tick(self, item: RecordedStep, items: _Peekable, pending: _Pending) -> bool:
        """Run the control loop's periodic step at its recorded time with its recorded
        statuses. False if the control loop did not come back (the pipeline is ending)."""
        self.live.steps += 1
        self._begin_input(item.time)
        statuses, _ = await self._take_followers(items, pending)
        await self.pacer.wait_for(item.time)
        self.robot.script(statuses)
        return await self.clock.release(item.time)

    def _finish(self, pending: _Pending, last_time: float | None) -> None:
        # The live run's final stop came after its last input: at the first thing recorded
        # after it (the engine's stop events carry that time; the Stop command is sent then).
        end = self._first_after_input if self._first_after_input is not None else last_time
        self.live.end_time = end
        if end is not None and end > self.clock.now():
            self.clock.set(end)
        self.robot.script([])
        for key in list(pending):
            self._drop_pending(pending, key)

    async def start(self) -> None:
        pass  # the input was opened when the replay began

    def stats(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        self._stop.set()
