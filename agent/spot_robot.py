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
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from bosdyn.api import estop_pb2, geometry_pb2, robot_state_pb2
from bosdyn.api.spot import robot_command_pb2 as spot_command_pb2
from bosdyn.client.estop import EstopClient, EstopEndpoint, EstopKeepAlive
from bosdyn.client.exceptions import Error as SdkError
from bosdyn.client.exceptions import LeaseUseError, RpcError
from bosdyn.client.frame_helpers import get_odom_tform_body
from bosdyn.client.lease import (
    Error as LeaseWalletError,
)
from bosdyn.client.lease import (
    LeaseClient,
    LeaseKeepAlive,
    LeaseResponseError,
    LeaseState,
    ResourceAlreadyClaimedError,
)
from bosdyn.client.power import PowerClient, power_on_motors, safe_power_off_motors
from bosdyn.client.robot import Robot as SdkRobot
from bosdyn.client.robot_command import (
    NotPoweredOnError,
    RobotCommandBuilder,
    RobotCommandClient,
    blocking_sit,
    blocking_stand,
)
from bosdyn.client.robot_state import RobotStateClient

from agent.config import RobotConfig, SafetyConfig
from agent.robot import ConnectionLost, EStopped, LeaseLost, RobotStatus, RobotUnavailable
from agent.sdk_async import await_sdk
from behaviors.commands import GoTo, MotionCommand, Sit, Stand, Stop, Velocity

log = logging.getLogger(__name__)

# Reported when the lease goes: this exact situation is what operators need to recognise.
LEASE_TAKEN_MESSAGE = "lease taken by another client (operator?): agent stopped commanding"


def _mobility_params(
    safety: SafetyConfig, linear_mps: float | None = None, angular_rps: float | None = None
) -> spot_command_pb2.MobilityParams:
    """Mobility params whose velocity limit is the tighter of the command's and the agent's caps."""
    v = min(safety.max_speed_mps, linear_mps if linear_mps is not None else safety.max_speed_mps)
    w = min(
        safety.max_yaw_rate_rps, angular_rps if angular_rps is not None else safety.max_yaw_rate_rps
    )
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
        safety: SafetyConfig,
        on_lease_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.sdk_robot = sdk_robot
        self.config = config
        self.safety = safety
        self._on_lease_lost = on_lease_lost
        self.lease_client: LeaseClient = sdk_robot.ensure_client(LeaseClient.default_service_name)
        self.estop_client: EstopClient = sdk_robot.ensure_client(EstopClient.default_service_name)
        self.power_client: PowerClient = sdk_robot.ensure_client(PowerClient.default_service_name)
        self.state_client: RobotStateClient = sdk_robot.ensure_client(
            RobotStateClient.default_service_name
        )
        self.command_client: RobotCommandClient = sdk_robot.ensure_client(
            RobotCommandClient.default_service_name
        )
        self._mobility_params = _mobility_params(safety)
        self._lease_keepalive: LeaseKeepAlive | None = None
        self._estop_keepalive: EstopKeepAlive | None = None
        self._lease_lost_reason: str | None = None
        self._lock = threading.Lock()
        self.commands_sent = 0

    # ----------------------------------------------------------------- start / stop (blocking)
    def start(self) -> None:
        """E-Stop check, lease, power and stand. Blocking: run it in a thread.

        Raises `EStopped` or `RobotUnavailable` with a message saying what the operator must do.
        """
        self._ensure_estop_released()
        try:
            self.lease_client.acquire()
        except ResourceAlreadyClaimedError as exc:
            raise RobotUnavailable(
                "the lease is held by another client (the tablet?): release it there; the "
                "agent never takes a lease from someone else"
            ) from exc
        self._lease_keepalive = LeaseKeepAlive(
            self.lease_client,
            rpc_interval_seconds=self.config.lease_retain_interval_s,
            on_failure_callback=self._on_keepalive_failure,
            keep_running_cb=lambda: self._lease_lost_reason is None,
            warnings=False,
            must_acquire=True,
        )
        log.info("lease acquired", extra={"event": "lease_acquired"})
        if self.config.power_on_and_stand:
            try:
                if not self.sdk_robot.is_powered_on(timeout=self.config.rpc_timeout_s):
                    power_on_motors(self.power_client, timeout_sec=20, update_frequency=10.0)
                    log.info("motors powered on", extra={"event": "powered_on"})
                blocking_stand(self.command_client, timeout_sec=10, update_frequency=10.0)
            except SdkError as exc:
                raise RobotUnavailable(
                    f"cannot power on and stand: {exc.__class__.__name__}: {exc}"
                ) from exc
            log.info("standing", extra={"event": "standing"})

    def _ensure_estop_released(self) -> None:
        if self.config.register_estop:
            endpoint = EstopEndpoint(
                self.estop_client, self.config.client_name, self.config.estop_timeout_s
            )
            endpoint.force_simple_setup()
            self._estop_keepalive = EstopKeepAlive(endpoint)
            log.info("own E-Stop endpoint registered", extra={"event": "estop_registered"})
        status = self.estop_client.get_status(timeout=self.config.rpc_timeout_s)
        if status.stop_level != estop_pb2.ESTOP_LEVEL_NONE:
            raise EStopped(
                "the robot is E-Stopped or has no E-Stop configured: connect and release an "
                "E-Stop (tablet or estop_gui), or set robot.register_estop for a bench/sim"
            )

    def close(self) -> None:
        """Stop walking, optionally sit, hand the lease back, end E-Stop check-ins. Blocking."""
        if self._lease_lost_reason is None and self._owns_lease():
            try:
                self.command_client.robot_command(
                    RobotCommandBuilder.stop_command(), timeout=self.config.rpc_timeout_s
                )
                if self._estop_keepalive is not None:
                    # Our own E-Stop stops checking in below, which would cut motor power while
                    # standing: sit and power off first.
                    safe_power_off_motors(
                        self.command_client, self.state_client, timeout_sec=10, update_frequency=10.0
                    )
                elif self.config.sit_on_exit:
                    blocking_sit(self.command_client, timeout_sec=10, update_frequency=10.0)
            except (SdkError, LeaseWalletError) as exc:
                log.warning(
                    "could not stop cleanly", extra={"event": "close_failed", "error": str(exc)}
                )
        if self._lease_keepalive is not None:
            self._lease_keepalive.shutdown()
            if self._lease_lost_reason is None and self._owns_lease():
                try:
                    self.lease_client.return_lease(
                        self.lease_client.lease_wallet.get_lease(), timeout=2
                    )
                    log.info("lease returned", extra={"event": "lease_returned"})
                except (SdkError, LeaseWalletError) as exc:
                    log.warning(
                        "could not return the lease",
                        extra={"event": "lease_return_failed", "error": str(exc)},
                    )
        if self._estop_keepalive is not None:
            self._estop_keepalive.shutdown()

    # ----------------------------------------------------------------------- lease tracking
    @property
    def lease_lost_reason(self) -> str | None:
        return self._lease_lost_reason

    def _owns_lease(self) -> bool:
        try:
            self.lease_client.lease_wallet.get_lease()
        except LeaseWalletError:
            return False
        return True

    def _lease_status(self) -> Any:
        try:
            return self.lease_client.lease_wallet.get_lease_state().lease_status
        except LeaseWalletError:
            return None

    def _mark_lease_lost(self, detail: str) -> None:
        with self._lock:
            if self._lease_lost_reason is not None:
                return
            self._lease_lost_reason = f"{LEASE_TAKEN_MESSAGE} ({detail})"
        log.error(
            "lease lost", extra={"event": "lease_lost", "detail": detail}
        )
        if self._on_lease_lost is not None:
            self._on_lease_lost(self._lease_lost_reason)

    def _on_keepalive_failure(self, exc: Exception) -> None:
        # Runs on the keep-alive thread. A network error is not a lost lease (the connection
        # handling deals with that); the wallet saying someone else owns it is.
        if isinstance(exc, RpcError):
            return
        if self._lease_status() == LeaseState.Status.OTHER_OWNER or isinstance(
            exc, (LeaseUseError, LeaseResponseError)
        ):
            self._mark_lease_lost(f"keep-alive: {exc.__class__.__name__}")

    def _lease_error(self, exc: Exception) -> RobotUnavailable:
        """Classify a lease failure on a command; re-acquire only a lease nobody else holds."""
        status = self._lease_status()
        if status == LeaseState.Status.REVOKED:
            # Revoked after a communication loss, not taken: no one holds it, acquiring is
            # not fighting. If someone grabbed it meanwhile, acquire fails and we give up.
            try:
                self.lease_client.acquire()
                log.warning("lease re-acquired after revocation", extra={"event": "lease_reacquired"})
                return RobotUnavailable("lease was revoked and has been re-acquired; retry")
            except (SdkError, LeaseWalletError):
                pass
        self._mark_lease_lost(exc.__class__.__name__)
        return LeaseLost(self._lease_lost_reason or LEASE_TAKEN_MESSAGE)

    # ------------------------------------------------------------------------ the Robot seam
    def _build(self, command: MotionCommand) -> tuple[Any, float | None]:
        now = time.time()
        if isinstance(command, Velocity):
            proto = RobotCommandBuilder.synchro_velocity_command(
                command.vx, command.vy, command.vyaw, params=self._mobility_params
            )
            return proto, now + command.duration_s
        if isinstance(command, GoTo):
            params = _mobility_params(self.safety, command.max_linear_mps, command.max_angular_rps)
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
        if self._lease_lost_reason is not None:
            raise LeaseLost(self._lease_lost_reason)
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
            raise ConnectionLost(f"robot did not answer a command: {exc.__class__.__name__}") from exc
        self.commands_sent += 1

    async def status(self) -> RobotStatus:
        if self._lease_lost_reason is not None:
            raise LeaseLost(self._lease_lost_reason)
        timeout = self.config.rpc_timeout_s
        try:
            state, estop = await asyncio.gather(
                await_sdk(self.state_client.get_robot_state_async(timeout=timeout)),
                await_sdk(self.estop_client.get_status_async(timeout=timeout)),
            )
        except RpcError as exc:
            raise ConnectionLost(f"robot did not answer: {exc.__class__.__name__}") from exc
        pose = get_odom_tform_body(state.kinematic_state.transforms_snapshot)
        powered = state.power_state.motor_power_state == robot_state_pb2.PowerState.STATE_ON
        return RobotStatus(
            connected=True,
            powered=powered,
            estopped=estop.stop_level != estop_pb2.ESTOP_LEVEL_NONE,
            has_lease=self._owns_lease(),
            odom_x=float(pose.x) if pose is not None else 0.0,
            odom_y=float(pose.y) if pose is not None else 0.0,
            odom_yaw=float(pose.rot.to_yaw()) if pose is not None else 0.0,
        )
