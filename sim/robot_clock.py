"""The robot's wall clock, which is never the host's.

Its own module because every service stamps replies with it (time sync measures exactly those
stamps) while only the body moves: services need the clock without the physics.
"""

from __future__ import annotations

import time

from google.protobuf.timestamp_pb2 import Timestamp

NSEC_PER_SEC = 1_000_000_000


class RobotClock:
    """The robot's wall clock: host time plus a fixed offset (a robot is never in sync with you)."""

    def __init__(self, offset_s: float = 0.0) -> None:
        self.offset_ns = int(round(offset_s * NSEC_PER_SEC))

    def now_ns(self) -> int:
        return time.time_ns() + self.offset_ns

    def now_s(self) -> float:
        return self.now_ns() / NSEC_PER_SEC

    @staticmethod
    def to_timestamp(robot_ns: int, out: Timestamp | None = None) -> Timestamp:
        ts = out if out is not None else Timestamp()
        ts.seconds, ts.nanos = divmod(robot_ns, NSEC_PER_SEC)
        return ts

    @staticmethod
    def from_timestamp(ts: Timestamp) -> int:
        return ts.seconds * NSEC_PER_SEC + ts.nanos
