"""Auth: user logins, payload credentials, and a token on every other service."""

from __future__ import annotations

import pytest
from bosdyn.api import robot_state_pb2
from bosdyn.client.auth import InvalidLoginError
from bosdyn.client.exceptions import UnauthenticatedError
from bosdyn.client.payload_registration import InvalidPayloadCredentialsError
from bosdyn.client.robot_state import RobotStateClient

from sim.server import DEFAULT_PAYLOAD_GUID, DEFAULT_PAYLOAD_SECRET, SimServer
from sim.testing import close_sdk, connect_sdk


def test_wrong_password_is_an_invalid_login(sim: SimServer) -> None:
    robot = connect_sdk(sim, "bad-login", authenticate=False)
    try:
        with pytest.raises(InvalidLoginError):
            robot.authenticate("spot", "not-the-password")
    finally:
        close_sdk(robot)


def test_services_require_a_user_token(sim: SimServer) -> None:
    robot = connect_sdk(sim, "no-login", authenticate=False)
    try:
        assert robot.get_id().serial_number  # robot-id is open, like on a robot
        with pytest.raises(UnauthenticatedError):
            robot.list_services()
    finally:
        close_sdk(robot)


def test_payload_credentials_authenticate(sim: SimServer) -> None:
    robot = connect_sdk(sim, "payload", authenticate=False)
    try:
        with pytest.raises(InvalidPayloadCredentialsError):
            robot.authenticate_from_payload_credentials(DEFAULT_PAYLOAD_GUID, "wrong-secret", retry_interval=0.01)
        robot.authenticate_from_payload_credentials(DEFAULT_PAYLOAD_GUID, DEFAULT_PAYLOAD_SECRET, retry_interval=0.01)
        state = robot.ensure_client(RobotStateClient.default_service_name).get_robot_state()
        assert state.power_state.motor_power_state == robot_state_pb2.PowerState.STATE_OFF
    finally:
        close_sdk(robot)
