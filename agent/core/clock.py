"""The `Clock` seam: where the pipeline's "now" comes from.

Live runs use `SystemClock` (this machine's `time.time()`, the clock frame times are converted
to). Replay uses `FrameClock`: time only moves when the replay source says a recorded frame was
taken, and every control tick that falls before that moment runs first, so a recording always
produces the same commands however fast the machine is.

The pipeline only ever calls `now()` and `sleep_until()`; it never asks which clock it has.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Seconds on this machine's clock (the clock `Frame.acquisition_time_local` uses)."""
        ...

    async def sleep_until(self, when: float) -> None:
        """Return once `now() >= when`."""
        ...


class SystemClock:
    """Wall clock: `time.time()`, with asyncio sleeps."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, when: float) -> None:
        delay = when - time.time()
        if delay > 0:
            await asyncio.sleep(delay)


class FrameClock:
    """Virtual time that only moves forward when `advance_to` is called (replay, tests).

    `advance_to(t)` wakes sleepers in deadline order, setting `now()` to each sleeper's
    deadline and yielding to the event loop until that sleeper has either gone back to sleep
    or finished, so a control loop sees every one of its ticks at the exact tick time.
    """

    def __init__(self, start: float = 0.0, settle_timeout_s: float = 1.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._slept = asyncio.Event()
        self._settle_timeout_s = settle_timeout_s

    def now(self) -> float:
        return self._now

    @property
    def sleeping(self) -> int:
        """How many tasks sleep on this clock now (a driver can wait for the control loop to
        reach its next sleep before it moves time)."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    async def sleep_until(self, when: float) -> None:
        self._slept.set()
        if when <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (when, next(self._order), future))
        await future

    async def advance_to(self, when: float) -> None:
        """Move time to `when`, running every sleeper due on the way, one at a time."""
        await asyncio.sleep(0)  # let tasks that are ready run (and go to sleep) first
        while self._sleepers and self._sleepers[0][0] <= when:
            deadline, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if future.done():  # its task was cancelled
                continue
            self._slept.clear()
            future.set_result(None)
            # The woken task has finished its step when it sleeps again. A task that exits
            # instead never does: the (real-time) timeout covers that last step.
            try:
                await asyncio.wait_for(self._slept.wait(), self._settle_timeout_s)
            except asyncio.TimeoutError:
                pass
        self._now = max(self._now, when)
