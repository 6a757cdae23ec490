"""The body's cooling fans: automatic speed from the electric power drawn, or a commanded power
for a duration (`FanPowerCommand`), with the feedback Spot gives: running until the command's
end time, then complete; a newer command overrides the older one (`STATUS_OVERRIDDEN_BY_COMMAND`
with its early stop time).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from bosdyn.api import power_pb2

from sim.command_records import remember

FAN_NAMES = ("body_fan_0", "body_fan_1", "hips_fan_0", "hips_fan_1")  # the fans Spot reports
MAX_FAN_HZ = 180.0  # fan frequency at 100 % power
FeedbackStatus = power_pb2.FanPowerCommandFeedbackResponse


@dataclass
class FanCommand:
    command_id: int
    percent_power: int
    start_ns: int
    end_ns: int
    overridden_ns: int | None = None  # when a newer command took over

    def status(self, now_ns: int) -> int:
        if self.overridden_ns is not None:
            return FeedbackStatus.STATUS_OVERRIDDEN_BY_COMMAND
        return FeedbackStatus.STATUS_RUNNING if now_ns < self.end_ns else FeedbackStatus.STATUS_COMPLETE


class Fans:
    """Fan commands and the fans' current frequency (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._commands: OrderedDict[int, FanCommand] = OrderedDict()
        self._active: FanCommand | None = None
        self._next_id = 1

    def command(self, percent_power: int, now_ns: int, duration_ns: int) -> FanCommand:
        with self._lock:
            previous = self._active
            if previous is not None and previous.overridden_ns is None and now_ns < previous.end_ns:
                previous.overridden_ns = now_ns
            command = FanCommand(self._next_id, percent_power, now_ns, now_ns + duration_ns)
            self._next_id += 1
            self._active = command
            remember(self._commands, command.command_id, command)
            return command

    def get(self, command_id: int) -> FanCommand | None:
        with self._lock:
            return self._commands.get(command_id)

    def frequency_hz(self, now_ns: int, electric_power_w: float) -> float:
        """A commanded power while its command runs; otherwise the fans follow the heat made."""
        with self._lock:
            active = self._active
            if active is not None and active.status(now_ns) == FeedbackStatus.STATUS_RUNNING:
                return MAX_FAN_HZ * active.percent_power / 100.0
        return MAX_FAN_HZ * min(1.0, 0.15 + electric_power_w / 1000.0)
