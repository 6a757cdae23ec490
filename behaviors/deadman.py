"""The deadman promise, and the one place every motion command's deadline comes from.

Promise: when the agent goes quiet (killed, hung, cut off), the robot's body is still within
`stop_within_s` of the last command the agent sent. Nothing of the agent can help then: what
stops the robot is the command's own deadline (the robot stops walking when its end time
passes) and the robot's braking after it. So a command's deadline is the promise minus

- the braking time from the command's own speed caps: linear speed / linear deceleration and
  turn rate / angular deceleration, whichever is longer (both brake at once);
- the robot's reaction: noticing the end time (one control step) and the error of the clock
  synchronisation the end time was converted with.

Faster commands get shorter deadlines and are re-sent every control tick, as the SDK's teleop
example re-sends its 0.6 s velocity deadlines. Behaviors derive their deadlines here, the engine
and the agent's command guard bound every command with the same function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from behaviors.commands import GoTo, MotionCommand, Velocity


@dataclass(frozen=True)
class StopBudget:
    """How soon a robot must be still after its agent goes quiet, and how it brakes."""

    stop_within_s: float = 1.0
    linear_decel_mps2: float = 2.0
    angular_decel_rps2: float = 3.0
    reaction_s: float = 0.1

    def braking_s(self, linear_mps: float, angular_rps: float) -> float:
        """Time to brake from these speeds to a standstill."""
        return max(abs(linear_mps) / self.linear_decel_mps2, abs(angular_rps) / self.angular_decel_rps2)

    def deadline_s(self, linear_mps: float, angular_rps: float) -> float:
        """The longest deadline a command moving at up to these speeds may carry (may be <= 0:
        see `shortfall`)."""
        return self.stop_within_s - self.reaction_s - self.braking_s(linear_mps, angular_rps)

    def shortfall(self, linear_mps: float, angular_rps: float, resend_period_s: float) -> str | None:
        """Why commands at these speed caps could not keep the promise, or None if they can.

        A deadline must outlast two re-send periods, or the robot would stop between re-sends
        (and at the first late one).
        """
        deadline = self.deadline_s(linear_mps, angular_rps)
        if deadline >= 2.0 * resend_period_s:
            return None
        return (
            f"at {linear_mps:g} m/s and {angular_rps:g} rad/s the robot needs "
            f"{self.braking_s(linear_mps, angular_rps):.2f} s to brake (at {self.linear_decel_mps2:g} "
            f"m/s^2, {self.angular_decel_rps2:g} rad/s^2) plus {self.reaction_s:g} s to react: a "
            f"stop within {self.stop_within_s:g} s leaves {max(deadline, 0.0):.2f} s of deadline, "
            f"less than two control ticks ({2.0 * resend_period_s:.2f} s)"
        )

    def bound(self, command: MotionCommand) -> MotionCommand:
        """`command` with a deadline no longer than the promise allows at its speed caps.

        A go-to must carry its speed caps (the engine and the guard fill them in): without
        them its braking time is unknown.
        """
        if isinstance(command, Velocity):
            deadline = self.deadline_s(math.hypot(command.vx, command.vy), command.vyaw)
        elif isinstance(command, GoTo):
            if command.max_linear_mps is None or command.max_angular_rps is None:
                raise ValueError("a go-to needs its speed caps before its deadline can be bounded")
            deadline = self.deadline_s(command.max_linear_mps, command.max_angular_rps)
        else:
            return command
        if command.duration_s <= deadline:
            return command
        return replace(command, duration_s=max(deadline, 0.0))
