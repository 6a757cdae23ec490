"""A daemon thread that calls `step(dt)` at a fixed rate, with the time that really passed.

Apart from the body because the scheduling is its own problem: on a busy 2-core machine the
thread wakes late, and a robot does not slow down (or brake more slowly) because its simulator
was scheduled late, so each step integrates the real elapsed time (capped after a long stall)
and the loop does not try to catch up after falling far behind (a suspended machine).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

MAX_STEP_S = 0.1  # longest physics step integrated at once (after a long stall, time is lost)


class PhysicsLoop:
    """Runs `step(dt_seconds)` every `period_s` in a daemon thread until `stop()`."""

    def __init__(self, step: Callable[[float], None], period_s: float, name: str = "sim-physics") -> None:
        self._step = step
        self.period_s = period_s
        self._name = name
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def _run(self) -> None:
        period = self.period_s
        next_tick = last = time.monotonic()
        while not self._stop_event.is_set():
            now = time.monotonic()
            dt, last = min(max(now - last, 0.0), MAX_STEP_S), now
            try:
                self._step(dt if dt > 0.0 else period)
            except Exception:
                _LOGGER.exception("sim physics step failed")
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay < -1.0:  # fell far behind (machine suspended?): don't try to catch up
                next_tick = time.monotonic()
                delay = 0.0
            if delay > 0:
                self._stop_event.wait(delay)
