"""Payloads through the SDK's PayloadClient and PayloadRegistrationClient (the calls the stock
`payloads` examples make: payloads.py, attach_detach_payload.py), `python -m bosdyn.client HOST
payload ...`, and manual approval (`--payload-approval manual`, `spot-agent sim approve-payload`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from bosdyn.api import payload_pb2, robot_id_pb2
from bosdyn.client.payload import PayloadClient
from bosdyn.client.payload_registration import (
    InvalidPayloadCredentialsError,
    PayloadNotAuthorizedError,
    PayloadRegistrationClient,
)
from bosdyn.client.robot import Robot
from support.cli import command_app
from support.sdk_cli import run_sdk_cli
from typer.testing import CliRunner

from sim.cli import approve_payload_command
from sim.payload_approval import APPROVED, UNKNOWN, ApprovalInbox, approval_dir, request_approval
from sim.server import DEFAULT_PAYLOAD_GUID, SimServer
from sim.testing import close_sdk, connect_sdk

GUID = "0b7e6a52-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
SECRET = "new-payload-secret"


def _payloads(robot: Robot) -> dict[str, payload_pb2.Payload]:
    return {p.GUID: p for p in robot.ensure_client(PayloadClient.default_service_name).list_payloads()}


def _register(robot: Robot, guid: str = GUID) -> PayloadRegistrationClient:
    registration = robot.ensure_client(PayloadRegistrationClient.default_service_name)
    registration.register_payload(payload_pb2.Payload(GUID=guid, name="my lidar", description="test payload"), SECRET)
    return registration


@pytest.fixture
def manual_sim() -> Iterator[SimServer]:
    server = SimServer.start(port=0, payload_approval="manual")
    try:
        yield server
    finally:
        server.stop()


def test_started_payload_is_listed_authorized_and_attached(spot_robot: Robot) -> None:
    known = _payloads(spot_robot)[DEFAULT_PAYLOAD_GUID]
    assert known.is_authorized and known.is_enabled


def test_registered_payload_is_listed_with_its_version_and_attach_state(spot_robot: Robot) -> None:
    registration = _register(spot_robot)
    listed = _payloads(spot_robot)[GUID]
    assert (listed.name, listed.is_authorized, listed.is_enabled) == ("my lidar", True, False)  # automatic approval
    registration.update_payload_version(GUID, SECRET, robot_id_pb2.SoftwareVersion(major_version=2, minor_version=1))
    registration.attach_payload(GUID, SECRET)
    listed = _payloads(spot_robot)[GUID]
    assert (listed.version.major_version, listed.version.minor_version, listed.is_enabled) == (2, 1, True)
    registration.detach_payload(GUID, SECRET)
    assert not _payloads(spot_robot)[GUID].is_enabled
    assert registration.get_payload_auth_token(GUID, SECRET)
    with pytest.raises(InvalidPayloadCredentialsError):
        registration.get_payload_auth_token(GUID, "wrong secret")


def test_manual_approval_holds_a_new_payload_until_approved(manual_sim: SimServer) -> None:
    robot = connect_sdk(manual_sim, "manual-approval")
    try:
        registration = _register(robot)
        assert not _payloads(robot)[GUID].is_authorized
        with pytest.raises(PayloadNotAuthorizedError):
            registration.get_payload_auth_token(GUID, SECRET)
        with pytest.raises(PayloadNotAuthorizedError):
            registration.attach_payload(GUID, SECRET)
        assert manual_sim.approve_payload(GUID)
        assert not manual_sim.approve_payload("no-such-guid")
        assert _payloads(robot)[GUID].is_authorized
        assert registration.get_payload_auth_token(GUID, SECRET)
        assert _payloads(robot)[DEFAULT_PAYLOAD_GUID].is_authorized  # the sim's own payloads need no approval
    finally:
        close_sdk(robot)


def test_approve_payload_command_reaches_the_running_sim(
    manual_sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    inbox = ApprovalInbox(approval_dir(manual_sim.port))  # what `spot-agent sim --payload-approval manual` polls
    stop = threading.Event()
    poller = threading.Thread(target=lambda: [inbox.poll(manual_sim.approve_payload) for _ in iter(lambda: stop.wait(0.05), True)])
    poller.start()
    try:
        robot = connect_sdk(manual_sim, "approve-command")
        try:
            _register(robot)
            app = command_app("approve-payload", approve_payload_command)
            runner = CliRunner()
            result = runner.invoke(app, ["approve-payload", GUID, "--port", str(manual_sim.port)])
            assert result.exit_code == 0, result.output
            assert _payloads(robot)[GUID].is_authorized
            unknown = runner.invoke(app, ["approve-payload", "no-such-guid", "--port", str(manual_sim.port)])
            assert unknown.exit_code == 2
        finally:
            close_sdk(robot)
    finally:
        stop.set()
        poller.join()


def test_approval_request_without_a_sim_times_out(tmp_path: Path) -> None:
    with pytest.raises(TimeoutError):
        request_approval(tmp_path / "nobody-home", GUID, timeout_s=0.2)
    directory = tmp_path / "silent"
    directory.mkdir()
    with pytest.raises(TimeoutError):
        request_approval(directory, GUID, timeout_s=0.2)
    assert list(directory.iterdir()) == []  # the unanswered request is taken back


def test_inbox_answers_each_request(tmp_path: Path) -> None:
    inbox = ApprovalInbox(tmp_path / "inbox")
    approved: list[str] = []
    results: list[str] = []
    asker = threading.Thread(target=lambda: results.append(request_approval(inbox.directory, "known", timeout_s=5.0)))
    asker.start()
    while asker.is_alive():
        inbox.poll(lambda guid: approved.append(guid) or guid == "known")
    assert (approved, results) == (["known"], [APPROVED])
    assert inbox.poll(lambda guid: False) == 0
    asker = threading.Thread(target=lambda: results.append(request_approval(inbox.directory, "other", timeout_s=5.0)))
    asker.start()
    while asker.is_alive():
        inbox.poll(lambda guid: False)
    assert results[-1] == UNKNOWN


def test_sdk_command_line_registers_and_lists_payloads(manual_sim: SimServer, tmp_path: Path) -> None:
    out = run_sdk_cli(
        manual_sim, tmp_path, "payload", "register", "--payload-name", "cli payload", "--payload-guid", GUID,
        "--payload-secret", SECRET, exit_code=1,
    ).stdout
    assert "Payload successfully registered" in out
    listing = run_sdk_cli(manual_sim, tmp_path, "payload", "list", "--proto").stdout
    assert f'GUID: "{GUID}"' in listing and 'name: "cli payload"' in listing
    assert "sim payload" in run_sdk_cli(manual_sim, tmp_path, "payload", "list").stdout
    again = run_sdk_cli(
        manual_sim, tmp_path, "payload", "register", "--payload-name", "x", "--payload-guid", GUID, "--payload-secret", SECRET,
        exit_code=1,
    ).stdout
    assert "already registered" in again


def test_payload_login_waits_for_approval(manual_sim: SimServer) -> None:
    """What the stock self_registration/self_register_payload.py does: register, then
    `authenticate_from_payload_credentials`, which waits until the admin approves."""
    _register_with(manual_sim)
    payload_robot = connect_sdk(manual_sim, "self-registered", authenticate=False)
    try:
        login = threading.Thread(target=payload_robot.authenticate_from_payload_credentials, args=(GUID, SECRET))
        login.start()
        login.join(timeout=1.5)
        assert login.is_alive() and not payload_robot.user_token  # still waiting for the admin
        assert manual_sim.approve_payload(GUID)
        login.join(timeout=15.0)
        assert not login.is_alive() and payload_robot.user_token
    finally:
        close_sdk(payload_robot)


def _register_with(sim: SimServer) -> None:
    robot = connect_sdk(sim, "registrar")
    try:
        _register(robot)
    finally:
        close_sdk(robot)
