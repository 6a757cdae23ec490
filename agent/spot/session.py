"""`SpotSession`: what the agent holds on a Spot besides its commands, and how it keeps it.

That is its login and clock sync, its own E-Stop endpoint (`robot.register_estop`), the lease
and motor power: set up at start, checked when the robot answers again after a lost connection,
rebuilt after a robot restart, given back at the end. All methods block: run them in a thread.

Rules:
- The lease is acquired, never taken. Someone else holding it ends the run (`LeaseLost`).
- A robot that answers again is checked before it is trusted. A rejected login means the robot
  restarted (or dropped the agent's token): tokens, lease epochs and E-Stop registrations do not
  survive that, so the agent logs in and syncs clocks again; its E-Stop endpoint and lease are
  taken again when it is going to drive again.
- Motors found off that the agent saw on (the robot powered itself off after losing contact for
  longer than its comms-loss timeout, restarted, or an E-Stop cut power and was released): with
  `robot.on_motors_off: exit` (the default) the run ends (exit code 4) saying why; only
  `power_on` lets the agent power on and stand again by itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from bosdyn.api import estop_pb2, lease_pb2, robot_state_pb2
from bosdyn.client.estop import EstopClient
from bosdyn.client.exceptions import Error as SdkError
from bosdyn.client.exceptions import LeaseUseError, RpcError, UnauthenticatedError
from bosdyn.client.lease import Error as LeaseWalletError
from bosdyn.client.lease import LeaseClient, LeaseKeepAlive, LeaseState, ResourceAlreadyClaimedError
from bosdyn.client.power import PowerClient, power_on_motors
from bosdyn.client.robot import Robot as SdkRobot
from bosdyn.client.robot_command import RobotCommandClient, blocking_stand
from bosdyn.client.robot_state import RobotStateClient

from agent.core.seams import ConnectionLost, EStopped, LeaseLost, RobotGone, RobotUnavailable
from agent.spot.config import RobotConfig
from agent.spot.connect import PERMANENT_LOGIN_ERRORS, Credentials, authenticate, explain
from agent.spot.own_estop import OwnEstop

log = logging.getLogger(__name__)

# Reported when the lease goes: this exact situation is what operators need to recognise.
LEASE_TAKEN_MESSAGE = "lease taken by another client (operator?): agent stopped commanding"
Status = LeaseState.Status


def rpc_reason(exc: BaseException) -> str:
    """An SDK error in one line: its class and the first line of its message."""
    name = exc.__class__.__name__
    first = str(exc).splitlines()[0] if str(exc) else ""
    if not first or first.startswith(name):
        return first or name
    return f"{name}: {first}"


class SpotSession:
    """Login, clock, E-Stop, lease and power of one agent run on one robot (across restarts)."""

    def __init__(
        self,
        sdk_robot: SdkRobot,
        config: RobotConfig,
        creds: Credentials | None = None,
        on_lease_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.sdk_robot = sdk_robot
        self.config = config
        self.creds = creds
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
        self.estop: OwnEstop | None = None
        self._lease_keepalive: LeaseKeepAlive | None = None
        self._lease_lost_reason: str | None = None
        self._lock = threading.Lock()
        # Set once the agent saw the motors on: from then on, motors off is a change to act on.
        self.expects_power = False
        # Why the session was last rebuilt or checked (for the motors-off message).
        self.restarted = False

    # ----------------------------------------------------------------------------- start
    def start(self) -> None:
        """E-Stop check, lease, power and stand. Raises `EStopped` or `RobotUnavailable` with a
        message saying what the operator must do."""
        if self.config.register_estop:
            self.estop = OwnEstop(self.estop_client, self.config)
            self.estop.register()
        self._require_estop_released()
        self._acquire_lease()
        if self.config.power_on_and_stand:
            self._power_on_and_stand()
        self.expects_power = self._motors_on()

    def _require_estop_released(self) -> None:
        status = self.estop_client.get_status(timeout=self.config.rpc_timeout_s)
        if status.stop_level != estop_pb2.ESTOP_LEVEL_NONE:
            raise EStopped(
                "the robot is E-Stopped or has no E-Stop configured: connect and release an "
                "E-Stop (tablet or estop_gui), or set robot.register_estop for a bench/sim"
            )

    def _acquire_lease(self) -> None:
        try:
            self.lease_client.acquire()
        except ResourceAlreadyClaimedError as exc:
            raise RobotUnavailable(
                "the lease is held by another client (the tablet?): release it there; the "
                "agent never takes a lease from someone else"
            ) from exc
        self._keep_lease_alive()
        log.info("lease acquired", extra={"event": "lease_acquired"})

    def _keep_lease_alive(self) -> None:
        if self._lease_keepalive is None:
            self._lease_keepalive = LeaseKeepAlive(
                self.lease_client,
                rpc_interval_seconds=self.config.lease_retain_interval_s,
                on_failure_callback=self._on_keepalive_failure,
                keep_running_cb=lambda: self._lease_lost_reason is None,
                warnings=False,
                must_acquire=True,
            )

    def _power_on_and_stand(self) -> None:
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

    def _motors_on(self) -> bool:
        state = self.state_client.get_robot_state(timeout=self.config.rpc_timeout_s)
        return bool(state.power_state.motor_power_state == robot_state_pb2.PowerState.STATE_ON)

    # ------------------------------------------------------------- after a lost connection
    def recover(self) -> None:
        """The robot may answer again: check the session, log in again if it was dropped.

        Raises `ConnectionLost` (still unreachable: retry later, with the reason), `RobotGone`
        (cannot log in again: end the run) or `LeaseLost`.
        """
        try:
            self.state_client.get_robot_state(timeout=self.config.rpc_timeout_s)
            relogged = False
        except UnauthenticatedError:
            self._log_in_again()
            relogged = True
        except RpcError as exc:
            raise ConnectionLost(f"robot still unreachable: {rpc_reason(exc)}") from exc
        self._sync_clock(fresh=relogged)
        if not relogged:
            self._check_lease()

    def _log_in_again(self) -> None:
        where = f"{self.config.hostname}:{self.config.port}"
        log.warning(
            "the robot rejected the agent's login: it restarted (or dropped the token); "
            "logging in again",
            extra={"event": "session_rebuild", "reason": "UnauthenticatedError", "host": where},
        )
        # What the old session held is gone on the robot: stop keeping it alive (the E-Stop
        # keep-alive and lease keep-alive would only collect errors), without handing it back.
        if self.estop is not None:
            self.estop.forget()
        self.stop_lease_keepalive()
        try:
            wallet = self.lease_client.lease_wallet
            wallet.remove(wallet.get_lease())
        except LeaseWalletError:
            pass
        if self.creds is None:
            raise RobotGone(
                f"the robot at {where} restarted or dropped the agent's login, and the agent "
                "was given no credentials to log in again", exit_reason="cannot_connect"
            )
        try:
            authenticate(self.sdk_robot, self.creds, self.config.rpc_timeout_s)
        except PERMANENT_LOGIN_ERRORS as exc:
            raise RobotGone(explain(exc, self.config, self.creds), exit_reason="cannot_connect") from exc
        except RpcError as exc:
            raise ConnectionLost(f"logging in again failed: {rpc_reason(exc)}") from exc
        self.restarted = True

    def _sync_clock(self, fresh: bool) -> None:
        """Clock sync usable again: the sync thread stops on any RPC error, and a restarted
        robot has a new clock (and does not know the old sync session)."""
        try:
            endpoint = self.sdk_robot.time_sync.endpoint  # restarts a stopped sync thread
            if fresh:
                endpoint.get_new_estimate()
            if not endpoint.establish_timesync(max_samples=25, break_on_success=True):
                raise ConnectionLost("no clock synchronisation with the robot yet")
        except RpcError as exc:
            raise ConnectionLost(f"clock sync failed: {rpc_reason(exc)}") from exc

    def _check_lease(self) -> None:
        """After an outage the lease may have gone stale on the robot (or to someone else)."""
        if self._lease_lost_reason is not None:
            raise LeaseLost(self._lease_lost_reason)
        try:
            self.lease_client.retain_lease(self.lease_client.lease_wallet.get_lease(),
                                           timeout=self.config.rpc_timeout_s)
        except LeaseUseError as exc:
            if self._taken(exc):
                self.mark_lease_lost("taken while the agent was out of contact")
                raise LeaseLost(self._lease_lost_reason or LEASE_TAKEN_MESSAGE) from exc
            # Revoked (stale) or unknown: nobody else holds it; acquiring is not fighting.
            self._reacquire()
        except LeaseWalletError:
            self._reacquire()
        except RpcError as exc:
            raise ConnectionLost(f"robot still unreachable: {rpc_reason(exc)}") from exc

    def _reacquire(self) -> None:
        try:
            self.lease_client.acquire()
        except ResourceAlreadyClaimedError as exc:
            self.mark_lease_lost("acquired by another client while the agent was out of contact")
            raise LeaseLost(self._lease_lost_reason or LEASE_TAKEN_MESSAGE) from exc
        except RpcError as exc:
            raise ConnectionLost(f"acquiring the lease again failed: {rpc_reason(exc)}") from exc
        self._keep_lease_alive()
        log.warning("lease acquired again", extra={"event": "lease_reacquired"})

    def power_on_again(self, why: str) -> None:
        """The explicit `power_on` policy: E-Stop endpoint, lease, power, stand, again."""
        log.warning(
            "motors are off; robot.on_motors_off is 'power_on': powering on and standing again",
            extra={"event": "powering_on_again", "reason": why},
        )
        try:
            if self.estop is not None and not self.estop.checking_in():
                self.estop.register()
            self._require_estop_released()
            self._check_lease()
            self._clear_behavior_faults()
            self._power_on_and_stand()
        except (EStopped, LeaseLost, ConnectionLost):
            raise
        except RobotUnavailable as exc:
            raise RobotGone(f"motors are off ({why}) and powering on again failed: {exc}") from exc
        except (SdkError, LeaseWalletError) as exc:
            raise ConnectionLost(f"powering on again failed: {rpc_reason(exc)}") from exc
        if self.restarted:
            log.warning("session rebuilt after the robot restarted: logged in, clock synced, "
                        "E-Stop and lease taken again", extra={"event": "session_rebuilt"})
        self.restarted = False
        log.warning("powered on and standing again", extra={"event": "powered_on_again"})

    def _clear_behavior_faults(self) -> None:
        """A robot that powered off on comms loss holds a behavior fault (e.g. lease timeout)
        that refuses commands until cleared; clearing it is part of the explicit power-on."""
        state = self.state_client.get_robot_state(timeout=self.config.rpc_timeout_s)
        for fault in state.behavior_fault_state.faults:
            cause = robot_state_pb2.BehaviorFault.Cause.Name(fault.cause)
            if fault.status != robot_state_pb2.BehaviorFault.STATUS_CLEARABLE:
                raise RobotUnavailable(f"the robot has a behavior fault that cannot be cleared: {cause}")
            self.command_client.clear_behavior_fault(fault.behavior_fault_id,
                                                     timeout=self.config.rpc_timeout_s)
            log.warning("behavior fault cleared", extra={"event": "fault_cleared", "cause": cause})

    # ------------------------------------------------------------------------- the lease
    @property
    def lease_lost_reason(self) -> str | None:
        return self._lease_lost_reason

    def owns_lease(self) -> bool:
        try:
            self.lease_client.lease_wallet.get_lease()
        except LeaseWalletError:
            return False
        return True

    def lease_status(self) -> Any:
        try:
            return self.lease_client.lease_wallet.get_lease_state().lease_status
        except LeaseWalletError:
            return None

    def mark_lease_lost(self, detail: str) -> None:
        with self._lock:
            if self._lease_lost_reason is not None:
                return
            self._lease_lost_reason = f"{LEASE_TAKEN_MESSAGE} ({detail})"
        log.error("lease lost", extra={"event": "lease_lost", "detail": detail})
        if self._on_lease_lost is not None:
            self._on_lease_lost(self._lease_lost_reason)

    def _taken(self, exc: Exception) -> bool:
        """Whether a lease failure says someone else holds a newer lease (taken), as opposed to
        a stale lease (revoked after comms loss) or one of an epoch the robot no longer knows
        (it restarted), which are the connection handling's business."""
        if self.lease_status() == Status.OTHER_OWNER:
            return True
        # RetainLease failures do not update the wallet: read the robot's verdict.
        result = getattr(getattr(exc, "response", None), "lease_use_result", None)
        return result is not None and result.status == lease_pb2.LeaseUseResult.STATUS_OLDER

    def _on_keepalive_failure(self, exc: Exception) -> None:
        # Runs on the keep-alive thread; network errors are the connection handling's business.
        if not isinstance(exc, RpcError) and self._taken(exc):
            self.mark_lease_lost(f"keep-alive: {exc.__class__.__name__}")

    # --------------------------------------------------------------------------- closing
    def stop_lease_keepalive(self) -> None:
        if self._lease_keepalive is not None:
            self._lease_keepalive.shutdown()
            self._lease_keepalive = None

    def return_lease(self) -> None:
        self.stop_lease_keepalive()
        if self._lease_lost_reason is not None or not self.owns_lease():
            return
        try:
            self.lease_client.return_lease(self.lease_client.lease_wallet.get_lease(), timeout=2)
            log.info("lease returned", extra={"event": "lease_returned"})
        except (SdkError, LeaseWalletError) as exc:
            log.warning("could not return the lease",
                        extra={"event": "lease_return_failed", "error": str(exc)})
