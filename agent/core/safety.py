"""Safety pieces the pipeline composes: perception watchdog, reconnect backoff.

They are plain state machines driven by the pipeline's clock, so they behave the same live and
in replay and are unit-tested without a robot. The policies they implement:
- Watchdog: the newest detection result shows a frame captured more than `watchdog_s` ago
  (no fresh frame, or no detection of one) -> trip once (the pipeline sends one Stop and halts
  the behaviors). It clears when results come back, but halted behaviors stay
  halted: only a rule firing again starts motion.
- Caps: not here. Every outgoing command passes `behaviors.limits.cap_command` with the
  agent's `safety:` caps (the same function the cue engine applies with the rules' limits).
- Backoff: exponential, capped, reset on success.
"""

from __future__ import annotations

from enum import Enum


class WatchdogChange(Enum):
    TRIPPED = "tripped"
    RECOVERED = "recovered"


class PerceptionWatchdog:
    """Trips when the newest detected frame was captured more than `timeout_s` ago.

    Until the first result arrives, the clock runs from `start` plus `startup_grace_s` (the
    streams are still connecting); the first result ends the grace.
    """

    def __init__(self, timeout_s: float, start: float, startup_grace_s: float = 0.0) -> None:
        self.timeout_s = timeout_s
        self.last_fresh: float | None = None
        self._grace_until = start + startup_grace_s
        self.tripped = False

    def feed(self, captured_at: float) -> None:
        self.last_fresh = captured_at if self.last_fresh is None else max(self.last_fresh, captured_at)

    def silence(self, now: float) -> float:
        return now - (self.last_fresh if self.last_fresh is not None else self._grace_until)

    def check(self, now: float) -> WatchdogChange | None:
        """The state change at `now`, if any (each trip and recovery is reported once)."""
        starving = self.silence(now) > self.timeout_s
        if starving and not self.tripped:
            self.tripped = True
            return WatchdogChange.TRIPPED
        if not starving and self.tripped:
            self.tripped = False
            return WatchdogChange.RECOVERED
        return None


class Backoff:
    """Exponential wait between reconnection attempts."""

    def __init__(self, first_s: float, max_s: float) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.next_wait = first_s
        self.attempts = 0

    def next(self) -> float:
        wait = self.next_wait
        self.attempts += 1
        self.next_wait = min(self.next_wait * 2.0, self.max_s)
        return wait

    def reset(self) -> None:
        self.next_wait = self.first_s
        self.attempts = 0
