"""`DryRunRobot`: the `Robot` seam without a robot. Records every command with its time.

Replay runs the pipeline against it so a recording shows which commands the agent *would* have
sent and when (time comes from the pipeline's clock, i.e. from the recording's frames). It also
moves a virtual body the way the commands ask (velocity until its deadline, go-to at capped
speed), so behaviors that watch the pose (walk to a tag, follow) play out instead of stalling.

`ReplayRobot` is the one replay drives: a dry-run robot that answers status calls with the
statuses a live run recorded (errors included), so the replayed engine acts on what the live
one saw.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from agent.core.clock import Clock
from agent.core.seams import ConnectionLost, EStopped, LeaseLost, RobotStatus, RobotUnavailable
from agent.replay.recorded import RecordedCommand, RecordedStatus
from behaviors.commands import GoTo, MotionCommand, Sit, Stand, Stop, Velocity
from behaviors.geometry import wrap_angle


class DryRunRobot:
    """Records commands; integrates a planar body pose from them."""

    def __init__(
        self,
        clock: Clock,
        x: float = 0.0,
        y: float = 0.0,
        yaw: float = 0.0,
        goto_speed_mps: float = 0.5,
        goto_yaw_rate_rps: float = 0.8,
    ) -> None:
        self.clock = clock
        self.recorded: list[RecordedCommand] = []
        self.x, self.y, self.yaw = x, y, yaw
        self.sitting = False
        self.goto_speed_mps = goto_speed_mps
        self.goto_yaw_rate_rps = goto_yaw_rate_rps
        self._motion: MotionCommand | None = None
        self._motion_until = 0.0
        self._last_update = clock.now()

    def _advance(self, now: float) -> None:
        """Move the body from the last update to `now` under the active command."""
        dt_total = now - self._last_update
        self._last_update = now
        motion = self._motion
        if dt_total <= 0 or motion is None:
            return
        dt = min(dt_total, max(0.0, self._motion_until - (now - dt_total)))
        if isinstance(motion, Velocity):
            c, s = math.cos(self.yaw), math.sin(self.yaw)
            self.x += (c * motion.vx - s * motion.vy) * dt
            self.y += (s * motion.vx + c * motion.vy) * dt
            self.yaw = wrap_angle(self.yaw + motion.vyaw * dt)
        elif isinstance(motion, GoTo):
            dx, dy = motion.x - self.x, motion.y - self.y
            dist = math.hypot(dx, dy)
            speed = min(self.goto_speed_mps, motion.max_linear_mps or self.goto_speed_mps)
            rate = min(self.goto_yaw_rate_rps, motion.max_angular_rps or self.goto_yaw_rate_rps)
            step = min(dist, speed * dt)
            if dist > 1e-9:
                self.x += dx / dist * step
                self.y += dy / dist * step
            dyaw = wrap_angle(motion.yaw - self.yaw)
            turn = max(-rate * dt, min(rate * dt, dyaw))
            self.yaw = wrap_angle(self.yaw + turn)
        if now >= self._motion_until:
            self._motion = None

    async def send(self, command: MotionCommand) -> None:
        now = self.clock.now()
        self._advance(now)
        self.recorded.append(RecordedCommand(now, command))
        if isinstance(command, (Velocity, GoTo)):
            self.sitting = False
            self._motion, self._motion_until = command, now + command.duration_s
        elif isinstance(command, (Stop, Stand)):
            self._motion = None
            self.sitting = False if isinstance(command, Stand) else self.sitting
        elif isinstance(command, Sit):
            self._motion = None
            self.sitting = True

    async def status(self) -> RobotStatus:
        self._advance(self.clock.now())
        return RobotStatus(
            connected=True,
            powered=True,
            estopped=False,
            has_lease=True,
            odom_x=self.x,
            odom_y=self.y,
            odom_yaw=self.yaw,
            detail="dry run",
        )

    @property
    def moving(self) -> bool:
        return self._motion is not None


_ERRORS: dict[str, type[RobotUnavailable]] = {
    "LeaseLost": LeaseLost,
    "ConnectionLost": ConnectionLost,
    "EStopped": EStopped,
    "RobotUnavailable": RobotUnavailable,
}


class ReplayRobot(DryRunRobot):
    """`DryRunRobot` that answers status calls with a live run's recorded statuses when given.

    Without scripted statuses (video, image folders, frame-by-frame replay) it reports the
    dry-run body that moves as the commands ask.
    """

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self._scripted: deque[RecordedStatus] = deque()
        self.status_calls_unscripted = 0

    def script(self, statuses: list[RecordedStatus]) -> None:
        """The statuses for the next step(s), in order; leftovers of the previous are dropped."""
        self._scripted = deque(statuses)

    async def status(self) -> RobotStatus:
        if self._scripted:
            recorded = self._scripted.popleft()
            if recorded.error_kind is not None:
                raise _ERRORS.get(recorded.error_kind, RobotUnavailable)(recorded.error_message)
            if recorded.status is not None:
                self._advance(self.clock.now())
                return recorded.status
        self.status_calls_unscripted += 1
        return await super().status()
