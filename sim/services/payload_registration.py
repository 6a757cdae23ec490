"""Payload registration: payloads (e.g. a CORE I/O running our extension) authenticate with a
GUID and secret instead of a user and password, register themselves, report their version and
attach or detach.

Who is registered and authorized lives in the shared `PayloadRegistry` (sim/services/payload.py):
the payloads the sim was started with are authorized; new ones are authorized at once, or, with
`payload_approval="manual"`, only once approved (until then `GetPayloadAuthToken` and
`UpdatePayloadAttached` answer STATUS_PAYLOAD_NOT_AUTHORIZED).
"""

from __future__ import annotations

import grpc
from bosdyn.api import payload_registration_pb2 as pr
from bosdyn.api import payload_registration_service_pb2_grpc
from bosdyn.client.payload_registration import PayloadRegistrationClient

from sim.robot_clock import RobotClock
from sim.services.auth import TokenStore
from sim.services.common import PAYLOAD_REGISTRATION_AUTHORITY, InvalidRequest, Reply, ServiceSpec
from sim.services.payload import Credentials, PayloadRegistry

TokenStatus = pr.GetPayloadAuthTokenResponse
VersionStatus = pr.UpdatePayloadVersionResponse
AttachStatus = pr.UpdatePayloadAttachedResponse


def _credentials(request: object) -> tuple[str, str]:
    """(guid, secret) from `payload_credentials`, or the deprecated top-level fields."""
    creds = request.payload_credentials  # type: ignore[attr-defined]
    guid = creds.guid or getattr(request, "payload_guid", "")
    secret = creds.secret or getattr(request, "payload_secret", "")
    if not guid:
        raise InvalidRequest("payload_credentials.guid is empty")
    return guid, secret


class PayloadRegistrationServicer(payload_registration_service_pb2_grpc.PayloadRegistrationServiceServicer):
    spec = ServiceSpec(
        PayloadRegistrationClient.default_service_name,
        PayloadRegistrationClient.service_type,
        PAYLOAD_REGISTRATION_AUTHORITY,
        False,
    )

    def __init__(self, clock: RobotClock, tokens: TokenStore, registry: PayloadRegistry) -> None:
        self._clock = clock
        self._tokens = tokens
        self._registry = registry

    def add_to_server(self, server: grpc.Server) -> None:
        payload_registration_service_pb2_grpc.add_PayloadRegistrationServiceServicer_to_server(self, server)

    def GetPayloadAuthToken(self, request: pr.GetPayloadAuthTokenRequest, context: grpc.ServicerContext) -> pr.GetPayloadAuthTokenResponse:
        response = pr.GetPayloadAuthTokenResponse()
        with Reply(response, request, self._clock):
            guid, secret = _credentials(request)
            check = self._registry.check(guid, secret)
            if check == Credentials.OK:
                response.token = self._tokens.issue(f"payload:{guid}")
                response.status = TokenStatus.STATUS_OK
            elif check == Credentials.NOT_AUTHORIZED:
                response.status = TokenStatus.STATUS_PAYLOAD_NOT_AUTHORIZED
            else:
                response.status = TokenStatus.STATUS_INVALID_CREDENTIALS
        return response

    def RegisterPayload(self, request: pr.RegisterPayloadRequest, context: grpc.ServicerContext) -> pr.RegisterPayloadResponse:
        response = pr.RegisterPayloadResponse()
        with Reply(response, request, self._clock):
            if not request.payload.GUID or not request.payload_secret:
                raise InvalidRequest("payload.GUID and payload_secret are required")
            if self._registry.register(request.payload, request.payload_secret):
                response.status = pr.RegisterPayloadResponse.STATUS_OK
            else:
                response.status = pr.RegisterPayloadResponse.STATUS_ALREADY_EXISTS
        return response

    def UpdatePayloadVersion(self, request: pr.UpdatePayloadVersionRequest, context: grpc.ServicerContext) -> pr.UpdatePayloadVersionResponse:
        response = pr.UpdatePayloadVersionResponse()
        with Reply(response, request, self._clock):
            guid, secret = _credentials(request)
            check = self._registry.check(guid, secret)
            if check == Credentials.UNKNOWN:
                response.status = VersionStatus.STATUS_DOES_NOT_EXIST
            elif check == Credentials.INVALID:
                response.status = VersionStatus.STATUS_INVALID_CREDENTIALS
            else:  # an unauthorized payload may still report its version
                self._registry.set_version(guid, request.updated_version)
                response.status = VersionStatus.STATUS_OK
        return response

    def UpdatePayloadAttached(self, request: pr.UpdatePayloadAttachedRequest, context: grpc.ServicerContext) -> pr.UpdatePayloadAttachedResponse:
        response = pr.UpdatePayloadAttachedResponse()
        with Reply(response, request, self._clock):
            guid, secret = _credentials(request)
            if request.request not in (pr.UpdatePayloadAttachedRequest.REQUEST_ATTACH, pr.UpdatePayloadAttachedRequest.REQUEST_DETACH):
                raise InvalidRequest("request must be REQUEST_ATTACH or REQUEST_DETACH")
            check = self._registry.check(guid, secret)
            response.status = {
                Credentials.UNKNOWN: AttachStatus.STATUS_DOES_NOT_EXIST,
                Credentials.INVALID: AttachStatus.STATUS_INVALID_CREDENTIALS,
                Credentials.NOT_AUTHORIZED: AttachStatus.STATUS_PAYLOAD_NOT_AUTHORIZED,
                Credentials.OK: AttachStatus.STATUS_OK,
            }[check]
            if check == Credentials.OK:
                self._registry.set_attached(guid, request.request == pr.UpdatePayloadAttachedRequest.REQUEST_ATTACH)
        return response
