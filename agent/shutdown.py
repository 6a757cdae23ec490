"""SIGINT/SIGTERM for one agent run: a stop that always goes through the clean-up.

The handlers are installed before the run acquires anything (robot login, lease, E-Stop, motor
power, recording file) and stay until everything is given back, so a signal at any moment
unwinds the run instead of killing the process:

1. first signal: stop. A running pipeline stops; during start-up the step under way finishes
   (a connection attempt, powering on) and the run unwinds from there. Clean-up: stop walking,
   power off or sit as configured, return the lease, hand the E-Stop back, close the recording.
2. second signal: "already stopping": nothing is skipped.
3. third signal: forced. Waits that may last long end now (the E-Stop hand-back waiting for
   someone else's motors to go off), and the process exits within `FORCE_EXIT_S` whatever is
   left of the clean-up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)
FORCE_EXIT_S = 5.0


class Interrupted(Exception):
    """A stop was requested during start-up: unwind what was acquired so far."""


class Shutdown:
    """Counts stop signals and tells the run what to do about each."""

    def __init__(self) -> None:
        self._requested = threading.Event()  # read from worker threads (connect's back-off)
        self._count = 0
        self._on_stop: list[Callable[[], None]] = []
        self._on_force: list[Callable[[], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------------ handlers
    def install(self) -> None:
        self._loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            self._loop.add_signal_handler(sig, self.signal, sig)

    def uninstall(self) -> None:
        if self._loop is not None:
            for sig in SIGNALS:
                self._loop.remove_signal_handler(sig)
            self._loop = None

    def signal(self, sig: int) -> None:
        self._count += 1
        name = signal.Signals(sig).name
        if self._count == 1:
            log.warning("stop requested: stopping the robot, then giving back what the agent holds",
                        extra={"event": "stop_requested", "signal": name})
            self._requested.set()
            for action in self._on_stop:
                action()
        elif self._count == 2:
            log.warning("already stopping: finishing the safety and clean-up steps (a third "
                        f"signal forces an exit within {FORCE_EXIT_S:g} s)",
                        extra={"event": "already_stopping", "signal": name})
        elif self._count == 3:
            log.error(f"forced: ending long waits, exiting within {FORCE_EXIT_S:g} s whatever "
                      "is left", extra={"event": "stop_forced", "signal": name})
            for action in self._on_force:
                action()
            timer = threading.Timer(FORCE_EXIT_S, _force_exit, args=(128 + sig,))
            timer.daemon = True
            timer.start()

    # ---------------------------------------------------------------- what the run asks
    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def on_stop(self, action: Callable[[], None]) -> None:
        """Call `action` on the first signal (at once if it already came)."""
        self._on_stop.append(action)
        if self.requested:
            action()

    def on_force(self, action: Callable[[], None]) -> None:
        self._on_force.append(action)

    def check(self) -> None:
        """Raise `Interrupted` if a stop was requested (start-up calls this between steps)."""
        if self.requested:
            raise Interrupted("stopped during start-up")

    def sleep(self, seconds: float) -> None:
        """A back-off wait (in a worker thread) that a stop request cuts short."""
        if self._requested.wait(seconds):
            raise Interrupted("stopped during start-up")


def _force_exit(code: int) -> None:
    log.error("forced exit", extra={"event": "forced_exit", "code": code})
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(code)
