"""Directory registration: other computers (a payload, a GPU box) add their gRPC services to the
robot's directory, as `bosdyn.client.directory_registration` expects.

Spot's semantics: RegisterService on a taken name answers STATUS_ALREADY_EXISTS and still counts
as a heartbeat (that is how `DirectoryRegistrationKeepAlive` keeps an entry alive: it re-registers
every interval); UpdateService and UnregisterService answer STATUS_NONEXISTENT_SERVICE for a name
nobody registered. The robot's own services can be neither updated nor removed. A service
registered with a payload's token carries that payload's GUID (`host_payload_guid`).
"""

from __future__ import annotations

import grpc
from bosdyn.api import directory_registration_pb2 as reg
from bosdyn.api import directory_registration_service_pb2_grpc
from bosdyn.client.directory_registration import DirectoryRegistrationClient

from sim.robot_clock import RobotClock
from sim.services.auth import TokenStore
from sim.services.common import Reply, ServiceSpec
from sim.services.directory import Directory

_PAYLOAD_SUBJECT_PREFIX = "payload:"


class DirectoryRegistrationServicer(directory_registration_service_pb2_grpc.DirectoryRegistrationServiceServicer):
    spec = ServiceSpec(DirectoryRegistrationClient.default_service_name, DirectoryRegistrationClient.service_type)

    def __init__(self, clock: RobotClock, directory: Directory, tokens: TokenStore) -> None:
        self._clock = clock
        self._directory = directory
        self._tokens = tokens

    def add_to_server(self, server: grpc.Server) -> None:
        directory_registration_service_pb2_grpc.add_DirectoryRegistrationServiceServicer_to_server(self, server)

    def _payload_guid(self, context: grpc.ServicerContext) -> str:
        """The GUID of the payload whose token made this call ('' for a user's token)."""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                subject = self._tokens.subject(value[7:]) or ""
                return subject.removeprefix(_PAYLOAD_SUBJECT_PREFIX) if subject.startswith(_PAYLOAD_SUBJECT_PREFIX) else ""
        return ""

    def RegisterService(self, request: reg.RegisterServiceRequest, context: grpc.ServicerContext) -> reg.RegisterServiceResponse:
        response = reg.RegisterServiceResponse()
        with Reply(response, request, self._clock):
            added = self._directory.register(request.service_entry, request.endpoint, self._payload_guid(context))
            response.status = reg.RegisterServiceResponse.STATUS_OK if added else reg.RegisterServiceResponse.STATUS_ALREADY_EXISTS
        return response

    def UpdateService(self, request: reg.UpdateServiceRequest, context: grpc.ServicerContext) -> reg.UpdateServiceResponse:
        response = reg.UpdateServiceResponse()
        with Reply(response, request, self._clock):
            found = self._directory.update(request.service_entry, request.endpoint, self._payload_guid(context))
            response.status = reg.UpdateServiceResponse.STATUS_OK if found else reg.UpdateServiceResponse.STATUS_NONEXISTENT_SERVICE
        return response

    def UnregisterService(
        self, request: reg.UnregisterServiceRequest, context: grpc.ServicerContext
    ) -> reg.UnregisterServiceResponse:
        response = reg.UnregisterServiceResponse()
        with Reply(response, request, self._clock):
            found = self._directory.unregister(request.service_name)
            response.status = (
                reg.UnregisterServiceResponse.STATUS_OK if found else reg.UnregisterServiceResponse.STATUS_NONEXISTENT_SERVICE
            )
        return response
