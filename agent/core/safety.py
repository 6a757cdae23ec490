"""Safety pieces the pipeline composes: perception watchdog, command caps, reconnect backoff.

They are plain state machines driven by the pipeline's clock, so they behave the same live and
in replay and are unit-tested without a robot. The policies they implement:
- Watchdog: the newest detection result shows a frame captured more than `watchdog_s` ago
  (no fresh frame, or no detection of one) -> trip once (the pipeline sends one Stop and halts
  the behaviors). It clears when results come back, but halted behaviors stay
  halted: only a rule firing again starts motion.
- Caps: velocity and yaw rate clamped, go-to goals beyond the configured distance refused,
  and every deadline bounded by the stop promise at the command's final speed (the same
  derivation the behaviors use: behaviors/deadman.py). This is the agent's last word, on top
  of the rules file's own limits.
- Backoff: exponential, capped, reset on success.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum

from agent.core.config import SafetyConfig
from behaviors.commands import GoTo, MotionCommand, Velocity
from behaviors.geometry import RobotPose


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


@dataclass(frozen=True)
class Refused:
    """A command the caps would not let through, and why."""

    command: MotionCommand
    reason: str


class CommandGuard:
    """Applies the agent's speed, deadline and distance caps to each outgoing command."""

    def __init__(self, safety: SafetyConfig) -> None:
        self.safety = safety
        self.stop_budget = safety.stop_budget()

    def apply(self, command: MotionCommand, pose: RobotPose | None) -> MotionCommand | Refused:
        s = self.safety
        if isinstance(command, Velocity):
            vx, vy = command.vx, command.vy
            speed = math.hypot(vx, vy)
            if speed > s.max_speed_mps:
                k = s.max_speed_mps / speed
                vx, vy = vx * k, vy * k
            vyaw = max(-s.max_yaw_rate_rps, min(s.max_yaw_rate_rps, command.vyaw))
            duration = min(command.duration_s, s.max_command_duration_s)
            return self.stop_budget.bound(
                replace(command, vx=vx, vy=vy, vyaw=vyaw, duration_s=duration)
            )
        if isinstance(command, GoTo):
            if command.frame == "odom" and pose is not None:
                distance = math.hypot(command.x - pose.x, command.y - pose.y)
                if distance > s.max_goto_distance_m:
                    return Refused(
                        command,
                        f"goal {distance:.1f} m away exceeds max_goto_distance_m "
                        f"{s.max_goto_distance_m:.1f}",
                    )
            linear = s.max_speed_mps if command.max_linear_mps is None else command.max_linear_mps
            angular = s.max_yaw_rate_rps if command.max_angular_rps is None else command.max_angular_rps
            return self.stop_budget.bound(
                replace(
                    command,
                    duration_s=min(command.duration_s, s.max_command_duration_s),
                    max_linear_mps=min(linear, s.max_speed_mps),
                    max_angular_rps=min(angular, s.max_yaw_rate_rps),
                )
            )
        return command


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
