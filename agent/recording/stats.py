"""`RecorderStats`: what a recorder wrote, dropped and failed to write, in all and per segment.

Written into each segment's closing metadata (its own share, `since`), so a reader knows what
the recording is missing without the other segments, and returned by `Recorder.close()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RecorderStats:
    written: dict[str, int] = field(default_factory=dict)  # per record kind
    dropped: dict[str, int] = field(default_factory=dict)  # queue full, per record kind
    write_errors: int = 0
    last_error: str = ""
    engine_steps: int = 0  # engine inputs (observed results + control steps), dropped or not
    refused_after_failure: int = 0  # offered after recording stopped (disk full...)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def written_total(self) -> int:
        return sum(self.written.values())

    def since(self, earlier: RecorderStats) -> RecorderStats:
        """What happened between `earlier` and these stats (one segment's share)."""
        def minus(now: dict[str, int], then: dict[str, int]) -> dict[str, int]:
            return {k: v - then.get(k, 0) for k, v in now.items() if v - then.get(k, 0)}

        return RecorderStats(
            written=minus(self.written, earlier.written),
            dropped=minus(self.dropped, earlier.dropped),
            write_errors=self.write_errors - earlier.write_errors,
            last_error=self.last_error if self.write_errors > earlier.write_errors else "",
            engine_steps=self.engine_steps - earlier.engine_steps,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "written": dict(self.written),
            "dropped": dict(self.dropped),
            "dropped_total": self.dropped_total,
            "write_errors": self.write_errors,
            "last_error": self.last_error,
            "engine_steps": self.engine_steps,
        }
