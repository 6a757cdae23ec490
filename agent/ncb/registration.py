"""The worker's entry in a robot's directory, kept alive with the SDK's own helper.

`bosdyn.client.directory_registration.DirectoryRegistrationKeepAlive` registers the worker
(`bosdyn.api.NetworkComputeBridgeWorker`, at the IP and port the robot dials), re-registers it
every `interval_s` (which also puts it back after a robot restart, or after the directory
dropped it when its liveness lapsed), and unregisters it on exit. What is ours is what to do
when the robot says no:

- at start, a robot that does not offer directory registration at all (gRPC UNIMPLEMENTED) or
  refuses this client (permission denied) ends the worker with `RegistrationError` saying so:
  nothing would ever reach a worker the robot cannot list;
- at start, a robot that cannot be reached or times out is retried with doubling waits until
  it answers or the worker is stopped;
- while running, a rejected login (the robot restarted, its tokens are gone) logs in again with
  the same credentials and retries at once; other failures are retried by the helper.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from bosdyn.client.common import get_self_ip
from bosdyn.client.directory_registration import DirectoryRegistrationClient, DirectoryRegistrationKeepAlive
from bosdyn.client.error_callback_result import ErrorCallbackResult
from bosdyn.client.exceptions import PermissionDeniedError, RpcError, UnauthenticatedError, UnimplementedError
from bosdyn.client.robot import Robot as SdkRobot

from agent.spot.session import rpc_reason

log = logging.getLogger(__name__)


class _OneLine(logging.Filter):
    """The SDK's keep-alive logs each failed re-registration with a traceback (a robot restarting
    makes several): one warning line with the reason instead, as every other log line here."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {rpc_reason(record.exc_info[1])}"
            record.args = None
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


sdk_log = logging.getLogger(__name__ + ".keepalive")  # the SDK helper's own messages
sdk_log.addFilter(_OneLine())

SERVICE_TYPE = "bosdyn.api.NetworkComputeBridgeWorker"
DEFAULT_SERVICE_NAME = "spot-cue-agent-worker"


class RegistrationError(RuntimeError):
    """The robot will not list the worker; the message says why."""


def authority_for(service_name: str) -> str:
    return f"{service_name}.spot.robot"


def self_ip_for(robot_hostname: str) -> str:
    """The address of this machine on the route to the robot (what the stock servers register)."""
    return str(get_self_ip(robot_hostname))


def keep_registered(
    sdk_robot: SdkRobot,
    service_name: str,
    host_ip: str,
    port: int,
    stop: threading.Event,
    relogin: Callable[[], None],
    interval_s: float = 10.0,
    rpc_timeout_s: float = 5.0,
) -> DirectoryRegistrationKeepAlive | None:
    """Register and keep registered; None if `stop` was set before the robot answered.

    Raises `RegistrationError` for a robot that refuses registration for good."""
    client: DirectoryRegistrationClient = sdk_robot.ensure_client(DirectoryRegistrationClient.default_service_name)
    where = sdk_robot.address
    wait = 1.0
    while not stop.is_set():
        keep_alive = DirectoryRegistrationKeepAlive(client, logger=sdk_log, rpc_timeout_seconds=rpc_timeout_s,
                                                    rpc_interval_seconds=interval_s)
        keep_alive.reregistration_error_callback = _on_reregistration_error(relogin)
        try:
            keep_alive.start(service_name, SERVICE_TYPE, authority_for(service_name), host_ip, port)
        except UnimplementedError as exc:
            raise RegistrationError(
                f"the robot at {where} does not offer directory registration ({rpc_reason(exc)}): "
                "it cannot list this worker; serve it with --no-robot for clients that call it directly"
            ) from None
        except PermissionDeniedError as exc:
            raise RegistrationError(
                f"the robot at {where} refused to register {service_name!r} for this user ({rpc_reason(exc)})"
            ) from None
        except RpcError as exc:
            log.warning(f"registration with the robot at {where} failed, retrying in {wait:g} s: {rpc_reason(exc)}",
                        extra={"event": "worker_registration_retry", "error": rpc_reason(exc)})
            stop.wait(wait)
            wait = min(wait * 2, 30.0)
            continue
        log.info(f"registered as {service_name!r} ({SERVICE_TYPE}) at {host_ip}:{port} in the directory of "
                 f"the robot at {where}", extra={"event": "worker_registered", "service": service_name})
        return keep_alive
    return None


def _on_reregistration_error(relogin: Callable[[], None]) -> Callable[[Exception], Any]:
    def handle(exc: Exception) -> ErrorCallbackResult:
        if isinstance(exc, UnauthenticatedError):
            log.warning("robot rejected the login (did it restart?): logging in again",
                        extra={"event": "worker_relogin"})
            try:
                relogin()
            except Exception as again:  # keep the keep-alive thread alive: it retries
                log.warning(f"logging in again failed: {rpc_reason(again)}", extra={"event": "worker_relogin_failed"})
                return ErrorCallbackResult.RETRY_WITH_EXPONENTIAL_BACK_OFF
            return ErrorCallbackResult.RETRY_IMMEDIATELY
        return ErrorCallbackResult.RETRY_WITH_EXPONENTIAL_BACK_OFF
    return handle


def unregister(keep_alive: DirectoryRegistrationKeepAlive) -> None:
    """Stop re-registering and remove the entry; a robot that no longer answers is only logged."""
    keep_alive.shutdown()
    try:
        keep_alive.unregister()
    except RpcError as exc:
        log.warning(f"could not unregister from the robot's directory: {rpc_reason(exc)}",
                    extra={"event": "worker_unregister_failed"})
        return
    log.info("unregistered from the robot's directory", extra={"event": "worker_unregistered"})
