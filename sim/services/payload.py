"""Payloads the robot knows, and the payload service that lists them (`list_payloads`,
`python -m bosdyn.client HOST payload list`).

One `PayloadRegistry` is shared by payload-registration (register, credentials, version,
attach) and the payload service (list). Payloads the sim was started with are authorized and
attached. A newly registered payload is authorized at once with `approval="automatic"` (the
default); with `approval="manual"` it waits, as on a robot whose admin must authorize it in the
admin console: until `approve(guid)`, `GetPayloadAuthToken` answers STATUS_PAYLOAD_NOT_AUTHORIZED
(the SDK raises `PayloadNotAuthorizedError`) and `list_payloads` shows `is_authorized: false`.
"""

from __future__ import annotations

import enum
import logging
import secrets
import threading
from dataclasses import dataclass
from typing import Literal

import grpc
from bosdyn.api import payload_pb2, payload_service_pb2_grpc, robot_id_pb2
from bosdyn.client.payload import PayloadClient

from sim.robot_clock import RobotClock
from sim.services.common import Reply, ServiceSpec

_LOGGER = logging.getLogger(__name__)

PayloadApproval = Literal["automatic", "manual"]
PAYLOAD_APPROVALS: tuple[PayloadApproval, ...] = ("automatic", "manual")


class Credentials(enum.Enum):
    OK = "ok"
    UNKNOWN = "unknown"  # no such GUID
    INVALID = "invalid"  # wrong secret
    NOT_AUTHORIZED = "not authorized"


@dataclass
class _Entry:
    payload: payload_pb2.Payload
    secret: str


class PayloadRegistry:
    """Registered payloads by GUID (thread-safe)."""

    def __init__(self, known: dict[str, str], approval: PayloadApproval = "automatic") -> None:
        if approval not in PAYLOAD_APPROVALS:
            raise ValueError(f"payload approval must be one of {PAYLOAD_APPROVALS}, not {approval!r}")
        self.approval: PayloadApproval = approval
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        for guid, secret in known.items():
            payload = payload_pb2.Payload(GUID=guid, name="sim payload", is_authorized=True, is_enabled=True)
            payload.description = "A payload the simulated robot was started with."
            self._entries[guid] = _Entry(payload, secret)

    def register(self, payload: payload_pb2.Payload, secret: str) -> bool:
        """Add a new payload (False if its GUID is already registered)."""
        with self._lock:
            if payload.GUID in self._entries:
                return False
            stored = payload_pb2.Payload()
            stored.CopyFrom(payload)
            stored.is_authorized = self.approval == "automatic"
            stored.is_enabled = False  # attached later (UpdatePayloadAttached), as on a robot
            self._entries[payload.GUID] = _Entry(stored, secret)
        if stored.is_authorized:
            _LOGGER.info("payload %s (%r) registered and authorized", payload.GUID, payload.name)
        else:
            _LOGGER.warning(
                "payload %s (%r) registered, waiting for approval: spot-agent sim approve-payload %s",
                payload.GUID, payload.name, payload.GUID,
            )
        return True

    def approve(self, guid: str) -> bool:
        """Authorize a registered payload, as its admin does in the admin console (False: unknown GUID)."""
        with self._lock:
            entry = self._entries.get(guid)
            if entry is None:
                return False
            entry.payload.is_authorized = True
        _LOGGER.info("payload %s authorized", guid)
        return True

    def check(self, guid: str, secret: str) -> Credentials:
        with self._lock:
            entry = self._entries.get(guid)
            if entry is None:
                return Credentials.UNKNOWN
            if not secrets.compare_digest(entry.secret, secret):
                return Credentials.INVALID
            return Credentials.OK if entry.payload.is_authorized else Credentials.NOT_AUTHORIZED

    def set_version(self, guid: str, version: robot_id_pb2.SoftwareVersion) -> None:
        with self._lock:
            self._entries[guid].payload.version.CopyFrom(version)

    def set_attached(self, guid: str, attached: bool) -> None:
        with self._lock:
            self._entries[guid].payload.is_enabled = attached

    def payloads(self) -> list[payload_pb2.Payload]:
        """Copies of every registered payload, in registration order."""
        with self._lock:
            copies = []
            for entry in self._entries.values():
                payload = payload_pb2.Payload()
                payload.CopyFrom(entry.payload)
                copies.append(payload)
            return copies

    def pending(self) -> list[str]:
        """GUIDs registered but not yet authorized."""
        with self._lock:
            return [guid for guid, entry in self._entries.items() if not entry.payload.is_authorized]


class PayloadServicer(payload_service_pb2_grpc.PayloadServiceServicer):
    spec = ServiceSpec(PayloadClient.default_service_name, PayloadClient.service_type)

    def __init__(self, clock: RobotClock, registry: PayloadRegistry) -> None:
        self._clock = clock
        self._registry = registry

    def add_to_server(self, server: grpc.Server) -> None:
        payload_service_pb2_grpc.add_PayloadServiceServicer_to_server(self, server)

    def ListPayloads(
        self, request: payload_pb2.ListPayloadsRequest, context: grpc.ServicerContext
    ) -> payload_pb2.ListPayloadsResponse:
        response = payload_pb2.ListPayloadsResponse()
        with Reply(response, request, self._clock):
            response.payloads.extend(self._registry.payloads())
        return response
