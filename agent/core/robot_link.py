"""`RobotLink`: the pipeline's side of the robot. Every command goes out through here.

What it guarantees, whatever the engine asks for:
- caps: every command passes `behaviors.limits.cap_command` with the agent's `safety:` caps
  (speed, turn rate, goal distance, a deadline the stop promise allows); refused ones are
  counted and reported, never sent;
- availability: before a control step the robot's status is read; no lease, an engaged E-Stop
  or motors off halt the behaviors (once per cause) and nothing is sent;
- trouble: a taken lease ends the run at once and is never fought for; a robot that can no
  longer be driven (`RobotGone`) ends the run with its reason; a lost connection halts the
  behaviors, tries one Stop, and retries with exponential backoff (behaviors never resume by
  themselves: a rule must fire again).

It reports through `LinkHooks` (events, observers, halting the engine, ending the run), so it
knows nothing of detection, the engine or the control loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from agent.core.config import SafetyConfig
from agent.core.safety import Backoff
from agent.core.seams import LeaseLost, Robot, RobotGone, RobotStatus, RobotUnavailable
from agent.core.stats import PipelineStats
from behaviors.commands import MotionCommand, Stop, command_to_dict
from behaviors.geometry import RobotPose
from behaviors.limits import Refused, cap_command

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LinkHooks:
    """How the link reports to the pipeline that owns it."""

    now: Callable[[], float]
    tell: Callable[..., None]  # an observer call: tell("command", now, command, outcome)
    event: Callable[..., Any]  # an agent event: event(kind, message, **data)
    halt: Callable[[str], None]  # halt the behaviors (the engine), recording why
    finish: Callable[[str], None]  # end the run with this reason
    spawn: Callable[[Coroutine[Any, Any, None]], None]  # run a task the pipeline waits for


class RobotLink:
    """Status, caps and sending for one robot, with the reactions to losing it."""

    def __init__(self, robot: Robot, safety: SafetyConfig, stats: PipelineStats,
                 hooks: LinkHooks) -> None:
        self.robot = robot
        self.limits = safety.motion_limits()  # the agent's caps: the last word on every command
        self.stop_budget = safety.stop_budget()
        self.stats = stats
        self.hooks = hooks
        self.commands: list[tuple[float, MotionCommand]] = []
        self.pose: RobotPose | None = None
        self.last_status: RobotStatus | None = None
        self.latest_result_time: float | None = None  # capture time of the newest observed result
        self.lease_lost = False
        self.robot_gone: str | None = None  # why the robot can no longer be driven (ends the run)
        self._unavailable: str | None = None  # why the robot cannot take commands now
        self._reconnect = Backoff(safety.reconnect_backoff_s, safety.reconnect_backoff_max_s)
        self._reconnect_at: float | None = None  # set while disconnected

    @property
    def disconnected(self) -> bool:
        return self._reconnect_at is not None

    @property
    def ours_to_command(self) -> bool:
        """False once the lease was taken or the robot ended the run: nothing may be sent."""
        return not self.lease_lost and self.robot_gone is None

    # ------------------------------------------------------------------------------- status
    async def refresh_status(self, now: float) -> bool:
        """Poll the robot; False when it cannot be commanded now (and handle why)."""
        if self._reconnect_at is not None and now < self._reconnect_at:
            return False
        try:
            status = await self.robot.status()
        except LeaseLost as exc:
            self.hooks.tell("robot_status", now, None, exc)
            self.on_lease_lost(str(exc))
            return False
        except RobotGone as exc:
            self.hooks.tell("robot_status", now, None, exc)
            self._on_robot_gone(exc)
            return False
        except RobotUnavailable as exc:
            self.hooks.tell("robot_status", now, None, exc)
            self._on_connection_lost(now, str(exc))
            return False
        self.hooks.tell("robot_status", now, status, None)
        if self._reconnect_at is not None:
            self._reconnect_at = None
            self._reconnect.reset()
            self.hooks.event(
                "reconnected", "robot reachable again; behaviors stay halted until a rule fires"
            )
        self.last_status = status
        self.pose = RobotPose(status.odom_x, status.odom_y, status.odom_yaw)
        return self._available(status)

    def _available(self, status: RobotStatus) -> bool:
        problem = None
        if not status.has_lease:
            problem = "no lease"
        elif status.estopped:
            problem = "E-Stop engaged"
        elif not status.powered:
            problem = "motors off"
        if problem is not None:
            if self._unavailable != problem:
                self._unavailable = problem
                self.hooks.halt(problem)
                self.hooks.event("robot_unavailable",
                                 f"robot cannot move: {problem}; behaviors halted", reason=problem)
            return False
        if self._unavailable is not None:
            self.hooks.event("robot_available", f"robot can move again (was: {self._unavailable})")
            self._unavailable = None
        return True

    async def final_status(self) -> None:
        """Read the robot's status once more at the end of a run (for the report)."""
        try:
            self.last_status = await self.robot.status()
        except RobotUnavailable as exc:
            self.hooks.tell("robot_status", self.hooks.now(), None, exc)
        else:
            self.hooks.tell("robot_status", self.hooks.now(), self.last_status, None)

    # ------------------------------------------------------------------------------ sending
    async def send(
        self, command: MotionCommand, cue_times: tuple[float, float] | None = None
    ) -> bool:
        """Send one command through the caps; False if the robot became unavailable.

        `cue_times`: (capture time, result time) of the frame whose cue fired the rule this
        command is the first of: cue-to-command latency is measured to it.
        """
        checked = cap_command(command, self.limits, self.pose, self.stop_budget)
        if isinstance(checked, Refused):
            self.stats.commands_refused += 1
            self.hooks.tell("command", self.hooks.now(), command, f"refused: {checked.reason}")
            self.hooks.event("command_refused", f"refused {command.kind}: {checked.reason}",
                             command=command.kind)
            return True
        try:
            await self.robot.send(checked)
        except LeaseLost as exc:
            self.hooks.tell("command", self.hooks.now(), checked, f"failed: {exc}")
            self.on_lease_lost(str(exc))
            return False
        except RobotUnavailable as exc:
            self.hooks.tell("command", self.hooks.now(), checked, f"failed: {exc}")
            self._on_connection_lost(self.hooks.now(), str(exc))
            return False
        self._sent(checked, cue_times)
        return True

    def _sent(self, command: MotionCommand, cue_times: tuple[float, float] | None) -> None:
        sent_at = self.hooks.now()
        self.stats.commands_sent += 1
        self.commands.append((sent_at, command))
        self.hooks.tell("command", sent_at, command, "sent")
        if self.latest_result_time is not None:
            self.stats.age_at_command_s.add(sent_at - self.latest_result_time)
        if cue_times is not None:
            captured, detected = cue_times
            self.stats.capture_to_command_s.add(sent_at - captured)
            self.stats.cue_to_command_s.add(sent_at - detected)
        log.debug("command sent", extra={"event": "command", **_flat(command_to_dict(command))})

    # ------------------------------------------------------------------------ robot trouble
    def on_lease_lost(self, reason: str) -> None:
        if self.lease_lost:
            return
        self.lease_lost = True
        self.hooks.halt("lease lost")
        self.hooks.event("lease_lost", reason)
        self.hooks.finish("lease_lost")

    def _on_robot_gone(self, exc: RobotGone) -> None:
        if self.robot_gone is not None:
            return
        self.robot_gone = str(exc)
        self.hooks.halt("robot gone")
        self.hooks.event("robot_gone", str(exc), reason=exc.exit_reason)
        self.hooks.finish(exc.exit_reason)

    def _on_connection_lost(self, now: float, reason: str) -> None:
        first = self._reconnect_at is None
        wait = self._reconnect.next()
        self._reconnect_at = now + wait
        if first:
            self.hooks.halt("connection lost")
            self.hooks.event(
                "connection_lost",
                f"{reason}; behaviors halted, reconnecting (next try in {wait:.1f} s)",
                reason=reason,
            )
            # The robot stops by itself when velocity deadlines pass; still try to say so.
            self.hooks.spawn(self._try_stop())
        else:
            log.info(
                "still disconnected",
                extra={"event": "reconnect_wait", "attempt": self._reconnect.attempts,
                       "wait_s": wait, "reason": reason},
            )

    async def _try_stop(self) -> None:
        try:
            await self.robot.send(Stop())
        except RobotUnavailable:
            pass


def _flat(data: dict[str, Any]) -> dict[str, Any]:
    return {f"cmd_{k}" if k != "kind" else "cmd": v for k, v in data.items()}


__all__ = ["LinkHooks", "RobotLink"]
