"""Payload registration: payloads (e.g. a CORE I/O running our extension) authenticate with a
GUID and secret instead of a user and password.

The sim knows the payloads it was started with (`payloads={guid: secret}`, all authorized) and
accepts new registrations, which its "admin" authorizes at once (a real robot waits for an
operator to approve the payload in the admin console).
"""

from __future__ import annotations

import secrets
import threading

import grpc
from bosdyn.api import payload_registration_pb2 as pr
from bosdyn.api import payload_registration_service_pb2_grpc
from bosdyn.client.payload_registration import PayloadRegistrationClient

from sim.robot_clock import RobotClock
from sim.services.auth import TokenStore
from sim.services.common import PAYLOAD_REGISTRATION_AUTHORITY, InvalidRequest, Reply, ServiceSpec


class PayloadRegistrationServicer(payload_registration_service_pb2_grpc.PayloadRegistrationServiceServicer):
    spec = ServiceSpec(
        PayloadRegistrationClient.default_service_name,
        PayloadRegistrationClient.service_type,
        PAYLOAD_REGISTRATION_AUTHORITY,
        False,
    )

    def __init__(self, clock: RobotClock, tokens: TokenStore, payloads: dict[str, str]) -> None:
        self._clock = clock
        self._tokens = tokens
        self._secret_by_guid = dict(payloads)
        self._lock = threading.Lock()

    def add_to_server(self, server: grpc.Server) -> None:
        payload_registration_service_pb2_grpc.add_PayloadRegistrationServiceServicer_to_server(self, server)

    def _secret_matches(self, guid: str, secret: str) -> bool:
        with self._lock:
            known = self._secret_by_guid.get(guid)
        return known is not None and secrets.compare_digest(known, secret)

    def GetPayloadAuthToken(self, request: pr.GetPayloadAuthTokenRequest, context: grpc.ServicerContext) -> pr.GetPayloadAuthTokenResponse:
        response = pr.GetPayloadAuthTokenResponse()
        with Reply(response, request, self._clock):
            guid = request.payload_credentials.guid or request.payload_guid
            secret = request.payload_credentials.secret or request.payload_secret
            if not guid:
                raise InvalidRequest("payload_credentials.guid is empty")
            if self._secret_matches(guid, secret):
                response.token = self._tokens.issue(f"payload:{guid}")
                response.status = pr.GetPayloadAuthTokenResponse.STATUS_OK
            else:
                response.status = pr.GetPayloadAuthTokenResponse.STATUS_INVALID_CREDENTIALS
        return response

    def RegisterPayload(self, request: pr.RegisterPayloadRequest, context: grpc.ServicerContext) -> pr.RegisterPayloadResponse:
        response = pr.RegisterPayloadResponse()
        with Reply(response, request, self._clock):
            guid = request.payload.GUID
            if not guid or not request.payload_secret:
                raise InvalidRequest("payload.GUID and payload_secret are required")
            with self._lock:
                if guid in self._secret_by_guid:
                    response.status = pr.RegisterPayloadResponse.STATUS_ALREADY_EXISTS
                else:
                    self._secret_by_guid[guid] = request.payload_secret
                    response.status = pr.RegisterPayloadResponse.STATUS_OK
        return response
