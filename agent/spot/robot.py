"""`SpotRobot`: the `Robot` seam on a real Spot (or the sim) through `bosdyn-client`.

Safety rules this class enforces, whatever the pipeline asks:
- The lease is *acquired*, never taken. If another client (the operator's tablet) takes it, the
  keep-alive or the next command notices, the robot is marked unavailable at once, the event is
  reported, and nothing tries to get it back: every later `send` raises `LeaseLost`.
- Motion needs a configured, released E-Stop. The agent can register its own E-Stop endpoint
  (`robot.register_estop`), for benches and the sim.
- Velocity commands always carry a deadline (converted to the robot's clock by the SDK through
  time sync), so the robot stops by itself when the agent goes quiet; speeds are capped by
  mobility params as well as by the pipeline.
- After a lost connection the session is checked (and rebuilt after a robot restart) before
  the robot is trusted again, and motors that went off under the agent are powered on again
  only if `robot.on_motors_off` says so: `agent/spot/session.py`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from bosdyn.api import estop_pb2, geometry_pb2, robot_state_pb2
from bosdyn.api.spot import robot_command_pb2 as spot_command_pb2
from bosdyn.client.exceptions import Error as SdkError
from bosdyn.client.exceptions import LeaseUseError, RpcError
from bosdyn.client.frame_helpers import get_odom_tform_body
from bosdyn.client.lease import Error as LeaseWalletError
from bosdyn.client.lease import LeaseResponseError, LeaseState
from bosdyn.client.power import safe_power_off_motors
from bosdyn.client.robot import Robot as SdkRobot
from bosdyn.client.robot_command import NotPoweredOnError, RobotCommandBuilder, blocking_sit

from agent.core.seams import ConnectionLost, LeaseLost, RobotGone, RobotStatus, RobotUnavailable
from agent.spot.config import RobotConfig
from agent.spot.connect import Credentials
from agent.spot.sdk_async import await_sdk
from agent.spot.session import LEASE_TAKEN_MESSAGE, SpotSession, rpc_reason
from behaviors.commands import GoTo, MotionCommand, Sit, Stand, Stop, Velocity

log = logging.getLogger(__name__)

__all__ = ["LEASE_TAKEN_MESSAGE", "SpotRobot"]
BehaviorFault = robot_state_pb2.BehaviorFault
ESTOP_POLL_S = 0.5  # how often the agent asks whether it may hand its E-Stop back


def _mobility_params(linear_mps: float, angular_rps: float) -> spot_command_pb2.MobilityParams:
    """Mobility params whose velocity limit is the command's own (already capped: the pipeline
    passes every command through `behaviors.limits.cap_command` before it gets here)."""
    v, w = abs(linear_mps), abs(angular_rps)
    limit = geometry_pb2.SE2VelocityLimit(
        max_vel=geometry_pb2.SE2Velocity(linear=geometry_pb2.Vec2(x=v, y=v), angular=w),
        min_vel=geometry_pb2.SE2Velocity(linear=geometry_pb2.Vec2(x=-v, y=-v), angular=-w),
    )
    return spot_command_pb2.MobilityParams(
        vel_limit=limit, locomotion_hint=spot_command_pb2.HINT_AUTO
    )


class SpotRobot:
    """A connected Spot (or sim) that the agent may command while it holds the lease."""

    def __init__(
        self,
        sdk_robot: SdkRobot,
        config: RobotConfig,
        on_lease_lost: Callable[[str], None] | None = None,
        creds: Credentials | None = None,
    ) -> None:
        """`creds`: to log in again after a robot restart (without them, a restart ends the run)."""
        self.sdk_robot = sdk_robot
        self.config = config
        self.session = SpotSession(sdk_robot, config, creds, on_lease_lost)
        self.lease_client = self.session.lease_client
        self.estop_client = self.session.estop_client
        self.state_client = self.session.state_client
        self.command_client = self.session.command_client
        self._lost_since: float | None = None  # monotonic time the robot stopped answering
        self._stop_keeping_estop = threading.Event()
        self.commands_sent = 0

    # ----------------------------------------------------------------- start / stop (blocking)
    def start(self) -> None:
        """E-Stop check, lease, power and stand. Blocking: run it in a thread.

        Raises `EStopped` or `RobotUnavailable` with a message saying what the operator must do.
        """
        self.session.start()

    def close(self) -> None:
        """Stop walking, sit or power off as configured, hand the lease and the E-Stop back.

        Blocking. With its own E-Stop endpoint the agent powers the robot off first: the
        endpoint goes with it.
        """
        session = self.session
        if session.lease_lost_reason is None and session.owns_lease() and self._motors_on():
            try:
                self.command_client.robot_command(
                    RobotCommandBuilder.stop_command(), timeout=self.config.rpc_timeout_s
                )
                if session.estop is not None:
                    safe_power_off_motors(
                        self.command_client, self.state_client, timeout_sec=10, update_frequency=10.0
                    )
                elif self.config.sit_on_exit:
                    blocking_sit(self.command_client, timeout_sec=10, update_frequency=10.0)
            except (SdkError, LeaseWalletError) as exc:
                log.warning(
                    "could not stop cleanly", extra={"event": "close_failed", "error": str(exc)}
                )
        session.return_lease()
        self._hand_back_estop()

    def _hand_back_estop(self) -> None:
        """Give the robot its E-Stop configuration back; with the motors on that must wait.

        The robot refuses to drop an E-Stop endpoint while the motors are on, and an endpoint
        that stops checking in cuts the power: so while someone else (who took the lease)
        drives the robot, the agent stays as its E-Stop client, until they power off.
        """
        estop = self.session.estop
        if estop is None or estop.hand_back():
            return
        if self.session.lease_lost_reason is not None:
            log.warning(
                "the lease holder has the motors on: the agent keeps its E-Stop endpoint "
                "checking in (stopping would cut their power) until they are off, then gives "
                "the robot its E-Stop configuration back",
                extra={"event": "estop_kept"},
            )
            while self._someone_drives() and not self._stop_keeping_estop.wait(ESTOP_POLL_S):
                if estop.hand_back():
                    return
        log.error(
            "stopping the agent's E-Stop check-ins with the motors on: the robot will sit and "
            "cut power within robot.estop_timeout_s",
            extra={"event": "estop_abandoned", "estop_timeout_s": self.config.estop_timeout_s},
        )
        estop.forget()

    def _someone_drives(self) -> bool:
        """Whether another client holds the lease (unknown counts as yes: keep the E-Stop)."""
        try:
            resources = self.lease_client.list_leases(timeout=self.config.rpc_timeout_s)
        except SdkError:
            return True
        return any(r.resource == "body" and r.lease_owner.client_name and not r.is_stale
                   for r in resources)

    def stop_keeping_estop(self) -> None:
        """End the wait for the motors to go off (an operator insists on stopping the agent)."""
        self._stop_keeping_estop.set()

    def _motors_on(self) -> bool:
        try:
            state = self.state_client.get_robot_state(timeout=self.config.rpc_timeout_s)
        except SdkError:
            return True  # unknown: try to stop it anyway
        return bool(state.power_state.motor_power_state == robot_state_pb2.PowerState.STATE_ON)

    # ----------------------------------------------------------------------- lease tracking
    @property
    def lease_lost_reason(self) -> str | None:
        return self.session.lease_lost_reason

    def _lease_error(self, exc: Exception) -> RobotUnavailable:
        """Classify a lease failure on a command; re-acquire only a lease nobody else holds."""
        status = self.session.lease_status()
        if status == LeaseState.Status.REVOKED:
            # Revoked after a communication loss, not taken: no one holds it, acquiring is
            # not fighting. If someone grabbed it meanwhile, acquire fails and we give up.
            try:
                self.lease_client.acquire()
                log.warning("lease re-acquired after revocation", extra={"event": "lease_reacquired"})
                return RobotUnavailable("lease was revoked and has been re-acquired; retry")
            except (SdkError, LeaseWalletError):
                pass
        elif status == LeaseState.Status.UNOWNED:
            # A lease of an epoch the robot no longer knows: it restarted. Check the session.
            return self._lost(f"the robot no longer knows the agent's lease (restarted?): "
                              f"{exc.__class__.__name__}")
        self.session.mark_lease_lost(exc.__class__.__name__)
        return LeaseLost(self.lease_lost_reason or LEASE_TAKEN_MESSAGE)

    def _lost(self, reason: str) -> ConnectionLost:
        """The robot stopped answering (or forgot the session): check it before trusting it."""
        if self._lost_since is None:
            self._lost_since = time.monotonic()
        return ConnectionLost(reason)

    # ------------------------------------------------------------------------ the Robot seam
    def _build(self, command: MotionCommand) -> tuple[Any, float | None]:
        now = time.time()
        if isinstance(command, Velocity):
            params = _mobility_params(math.hypot(command.vx, command.vy), command.vyaw)
            proto = RobotCommandBuilder.synchro_velocity_command(
                command.vx, command.vy, command.vyaw, params=params
            )
            return proto, now + command.duration_s
        if isinstance(command, GoTo):
            if command.max_linear_mps is None or command.max_angular_rps is None:
                raise ValueError("a go-to reaches the robot with its speed caps (cap_command)")
            params = _mobility_params(command.max_linear_mps, command.max_angular_rps)
            proto = RobotCommandBuilder.synchro_se2_trajectory_point_command(
                command.x, command.y, command.yaw, command.frame, params=params
            )
            return proto, now + command.duration_s
        if isinstance(command, Stop):
            return RobotCommandBuilder.stop_command(), None
        if isinstance(command, Sit):
            return RobotCommandBuilder.synchro_sit_command(), None
        if isinstance(command, Stand):
            return RobotCommandBuilder.synchro_stand_command(), None
        raise TypeError(f"not a motion command: {command!r}")

    async def send(self, command: MotionCommand) -> None:
        if self.lease_lost_reason is not None:
            raise LeaseLost(self.lease_lost_reason)
        proto, end_time_secs = self._build(command)
        try:
            future = self.command_client.robot_command_async(
                proto,
                end_time_secs=end_time_secs,
                timesync_endpoint=self.sdk_robot.time_sync.endpoint,
                timeout=self.config.rpc_timeout_s,
            )
            await await_sdk(future)
        except (LeaseUseError, LeaseResponseError, LeaseWalletError) as exc:
            raise self._lease_error(exc) from exc
        except NotPoweredOnError as exc:
            raise RobotUnavailable("motors are off (E-Stop or power loss)") from exc
        except RpcError as exc:
            raise self._lost(f"robot did not answer a command: {rpc_reason(exc)}") from exc
        except SdkError as exc:  # e.g. no clock sync to convert the deadline with
            raise self._lost(f"command not sent: {rpc_reason(exc)}") from exc
        self.commands_sent += 1

    async def status(self) -> RobotStatus:
        """The robot's state; after a lost connection, first its session is checked (and
        rebuilt). Raises `ConnectionLost` with the reason, `LeaseLost`, or `RobotGone`."""
        if self.lease_lost_reason is not None:
            raise LeaseLost(self.lease_lost_reason)
        if self._lost_since is not None:
            await asyncio.to_thread(self.session.recover)
        timeout = self.config.rpc_timeout_s
        try:
            state, estop = await asyncio.gather(
                await_sdk(self.state_client.get_robot_state_async(timeout=timeout)),
                await_sdk(self.estop_client.get_status_async(timeout=timeout)),
            )
        except RpcError as exc:
            raise self._lost(f"robot did not answer: {rpc_reason(exc)}") from exc
        powered = state.power_state.motor_power_state == robot_state_pb2.PowerState.STATE_ON
        estopped = estop.stop_level != estop_pb2.ESTOP_LEVEL_NONE
        if powered:
            self.session.expects_power = True
        elif self.session.expects_power and not estopped:
            await self._motors_went_off(self._why_motors_off(state))
            powered = True
        self._lost_since = None
        pose = get_odom_tform_body(state.kinematic_state.transforms_snapshot)
        return RobotStatus(
            connected=True,
            powered=powered,
            estopped=estopped,
            has_lease=self.session.owns_lease(),
            odom_x=float(pose.x) if pose is not None else 0.0,
            odom_y=float(pose.y) if pose is not None else 0.0,
            odom_yaw=float(pose.rot.to_yaw()) if pose is not None else 0.0,
        )

    async def _motors_went_off(self, why: str) -> None:
        """Apply `robot.on_motors_off`: end the run saying why, or power on and stand again."""
        if self.config.on_motors_off != "power_on":
            raise RobotGone(
                f"motors are off: {why}. The agent does not power the robot on by itself "
                "(robot.on_motors_off: exit)"
            )
        await asyncio.to_thread(self.session.power_on_again, why)

    def _why_motors_off(self, state: Any) -> str:
        reasons = []
        if self.session.restarted:
            reasons.append("the robot restarted (it no longer knew the agent's login)")
        elif self._lost_since is not None:
            reasons.append(
                f"the robot powered off while the agent had lost contact with it for "
                f"{time.monotonic() - self._lost_since:.1f} s (longer than the robot's "
                "comms-loss timeout?)"
            )
        faults = [BehaviorFault.Cause.Name(f.cause) for f in state.behavior_fault_state.faults]
        if faults:
            reasons.append(f"robot behavior faults: {', '.join(faults)}")
        return "; ".join(reasons) or "powered off by someone else, or by an E-Stop since released"
