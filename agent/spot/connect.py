"""Reach a Spot (or the sim) with `bosdyn-client`: SDK, CA, port, authentication, time sync.

Every failure ends in a `ConnectError` whose message says what to fix (wrong address, wrong
CA, bad credentials, no time sync), after `connect_retries` attempts with doubling waits for
the failures that may heal by themselves (the robot still booting, the network coming up).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bosdyn.client
import bosdyn.client.util
from bosdyn.client.auth import InvalidLoginError, InvalidTokenError, TemporarilyLockedOutError
from bosdyn.client.exceptions import Error as SdkError
from bosdyn.client.exceptions import (
    ProxyConnectionError,
    RpcError,
    UnableToConnectToRobotError,
)
from bosdyn.client.exceptions import TimedOutError as RpcTimedOutError
from bosdyn.client.payload_registration import (
    InvalidPayloadCredentialsError,
    PayloadNotAuthorizedError,
    PayloadRegistrationClient,
)
from bosdyn.client.robot import Robot as SdkRobot
from bosdyn.client.time_sync import TimeSyncError

from agent.spot.config import AuthConfig, RobotConfig

log = logging.getLogger(__name__)


class ConnectError(RuntimeError):
    """The agent could not reach, trust, authenticate with or sync clocks with the robot."""


@dataclass(frozen=True)
class Credentials:
    """Either a user/password pair or a payload GUID/secret (never both)."""

    username: str | None = None
    password: str | None = None
    payload_guid: str | None = None
    payload_secret: str | None = None

    @property
    def kind(self) -> str:
        return "payload" if self.payload_guid else "user"


def resolve_credentials(auth: AuthConfig, environ: dict[str, str] | None = None) -> Credentials:
    """Pick the credentials the config asks for; raise `ConnectError` saying what is missing."""
    environ = dict(os.environ) if environ is None else environ
    if auth.payload_credentials_file is not None:
        try:
            guid, secret = bosdyn.client.util.read_payload_credentials(
                str(auth.payload_credentials_file)
            )
        except OSError as exc:
            raise ConnectError(
                f"cannot read payload credentials file {auth.payload_credentials_file}: "
                f"{exc.strerror or exc}"
            ) from exc
        except ValueError as exc:
            raise ConnectError(
                f"payload credentials file {auth.payload_credentials_file} must hold the GUID "
                "on its first line and the secret on its second"
            ) from exc
        return Credentials(payload_guid=guid, payload_secret=secret)
    username = environ.get(auth.username_env) or auth.username
    password = environ.get(auth.password_env) or auth.password
    if not username or not password:
        raise ConnectError(
            f"no robot credentials: set {auth.username_env} and {auth.password_env} "
            "(or use --payload-credentials-file)"
        )
    return Credentials(username=username, password=password)


def authenticate(robot: SdkRobot, creds: Credentials, timeout_s: float) -> None:
    if creds.payload_guid:
        # What `robot.authenticate_from_payload_credentials` does, minus its endless wait for
        # an operator to authorize the payload: here that wait is bounded by our retries.
        client = robot.ensure_client(PayloadRegistrationClient.default_service_name)
        token = client.get_payload_auth_token(
            creds.payload_guid, creds.payload_secret, timeout=timeout_s
        )
        robot.update_user_token(token)
    else:
        robot.authenticate(creds.username, creds.password, timeout=timeout_s)


def connect_once(config: RobotConfig, creds: Credentials) -> SdkRobot:
    """One attempt: SDK, cert, port, authenticate, start time sync and wait for it."""
    ca = str(config.ca_cert) if config.ca_cert is not None else None
    if config.ca_cert is not None and not Path(config.ca_cert).is_file():
        raise ConnectError(f"CA certificate {config.ca_cert} does not exist")
    sdk = bosdyn.client.create_standard_sdk(config.client_name, cert_resource_glob=ca)
    robot = sdk.create_robot(config.hostname)
    robot.update_secure_channel_port(config.port)
    authenticate(robot, creds, config.rpc_timeout_s)
    robot.time_sync.wait_for_sync(timeout_sec=config.time_sync_timeout_s)
    return robot


# Failures that retrying cannot fix: say so at once instead of after the backoff.
PERMANENT_LOGIN_ERRORS = (InvalidLoginError, InvalidTokenError, InvalidPayloadCredentialsError)


def explain(exc: BaseException, config: RobotConfig, creds: Credentials) -> str:
    where = f"{config.hostname}:{config.port}"
    if isinstance(exc, InvalidLoginError):
        return f"robot at {where} rejected the {creds.kind} credentials ({exc.__class__.__name__})"
    if isinstance(exc, InvalidPayloadCredentialsError):
        return f"robot at {where} does not know this payload GUID/secret"
    if isinstance(exc, PayloadNotAuthorizedError):
        return (
            f"payload is not authorized on the robot at {where} yet: an operator must "
            "authorize it in the robot's admin console"
        )
    if isinstance(exc, TemporarilyLockedOutError):
        return f"robot at {where} temporarily locked this user out after failed logins"
    if isinstance(exc, InvalidTokenError):
        return f"robot at {where} rejected the authentication token"
    if isinstance(exc, (UnableToConnectToRobotError, ProxyConnectionError, RpcTimedOutError)):
        return (
            f"cannot reach the robot at {where} (is it on and reachable? right port?): "
            f"{exc.__class__.__name__}"
        )
    if isinstance(exc, TimeSyncError):
        return f"no clock synchronisation with the robot at {where}: {exc}"
    if isinstance(exc, RpcError):
        detail = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        if "certificate" in detail.lower() or "ssl" in detail.lower() or "handshake" in detail.lower():
            return f"TLS to {where} failed (wrong CA certificate?): {detail}"
        return f"cannot talk to the robot at {where}: {exc.__class__.__name__}: {detail}"
    return f"connecting to {where} failed: {exc.__class__.__name__}: {exc}"


def connect(
    config: RobotConfig,
    creds: Credentials,
    sleep: Callable[[float], None] = time.sleep,
) -> SdkRobot:
    """Connect with retries and doubling waits; raise `ConnectError` with a clear message."""
    wait = config.connect_backoff_s
    last = ""
    for attempt in range(1, config.connect_retries + 1):
        try:
            robot = connect_once(config, creds)
        except ConnectError:
            raise
        except PERMANENT_LOGIN_ERRORS as exc:
            raise ConnectError(explain(exc, config, creds)) from exc
        except (SdkError, OSError) as exc:
            last = explain(exc, config, creds)
            log.warning(
                "connect attempt failed",
                extra={"event": "connect_failed", "attempt": attempt, "error": last},
            )
            if attempt < config.connect_retries:
                sleep(wait)
                wait *= 2
            continue
        log.info(
            "connected",
            extra={
                "event": "connected",
                "host": config.hostname,
                "port": config.port,
                "auth": creds.kind,
                "attempt": attempt,
            },
        )
        return robot
    raise ConnectError(f"{last} (gave up after {config.connect_retries} attempts)")
