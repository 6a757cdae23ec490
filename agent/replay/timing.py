"""Replay's time: real-time pacing (`Pacer`), and the clock a recorded run scripts (`ScriptedClock`).

Replay never lets the machine's speed decide what time it is: time is the input's (a frame's
capture time, a live observation's or control step's recorded time). `Pacer` only slows the
replay down to the recorded pace when asked (`--speed`); it never changes a time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time

# How long (real time) to wait for the pipeline's control loop to come back to the clock.
SETTLE_TIMEOUT_S = 30.0


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
