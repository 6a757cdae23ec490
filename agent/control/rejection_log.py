"""Logging of rejected operator requests that a flood cannot turn into a flood of log lines.

A fuzzing or misbehaving client can send thousands of bad requests a second; each still gets its
error reply, but the log gets the first `burst` of each `period_s` one line each and then one
summary line per period with the counts by error code. Client-chosen text (keys, names,
commands) is escaped (`protocol.printable`): a NUL or an escape sequence never reaches the log.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from agent.control.protocol import printable


class RejectionLog:
    def __init__(
        self,
        logger: logging.Logger,
        burst: int = 10,
        period_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = logger
        self.burst = burst
        self.period_s = period_s
        self._clock = clock
        self._window_start: float | None = None
        self._logged = 0
        self._suppressed: Counter[str] = Counter()

    def note(self, operator: str, code: str, message: str) -> bool:
        """Record one rejected request. Returns True when it was the first one held back in
        this period: the caller should then `flush()` once the period is over, so the count
        is reported even if no further request comes."""
        now = self._clock()
        if self._window_start is None or now - self._window_start >= self.period_s:
            self.flush()
            self._window_start, self._logged = now, 0
        if self._logged < self.burst:
            self._logged += 1
            self.log.info(
                "rejected request from %s: %s: %s",
                printable(operator, 64),
                code,
                printable(message, 200),
                extra={"event": "request_rejected", "code": code},
            )
            return False
        first = not self._suppressed
        self._suppressed[code] += 1
        return first

    def flush(self) -> None:
        """Log how many rejections were held back since the last flush, if any."""
        if not self._suppressed:
            return
        total = sum(self._suppressed.values())
        by_code = ", ".join(f"{code}={n}" for code, n in self._suppressed.most_common())
        self._suppressed.clear()
        self.log.warning(
            "%d more requests rejected (logged at most %d per %.0f s): %s",
            total,
            self.burst,
            self.period_s,
            by_code,
            extra={"event": "requests_rejected", "count": total},
        )
