"""Directory service: lists every service the sim serves, with its type and authority."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from bosdyn.api import directory_pb2, directory_service_pb2_grpc
from bosdyn.client.directory import DirectoryClient

from sim.robot_clock import RobotClock
from sim.services.common import API_AUTHORITY, InvalidRequest, Reply, ServiceSpec


class DirectoryServicer(directory_service_pb2_grpc.DirectoryServiceServicer):
    spec = ServiceSpec(DirectoryClient.default_service_name, DirectoryClient.service_type, API_AUTHORITY)

    def __init__(self, clock: RobotClock, specs: Sequence[ServiceSpec]) -> None:
        self._clock = clock
        now = clock.now_ns()
        self._entries: list[directory_pb2.ServiceEntry] = []
        for spec in [*specs, self.spec]:
            entry = directory_pb2.ServiceEntry(
                name=spec.name, type=spec.type, authority=spec.authority, user_token_required=spec.user_token_required
            )
            RobotClock.to_timestamp(now, entry.last_update)
            self._entries.append(entry)
        self._by_name = {entry.name: entry for entry in self._entries}

    def add_to_server(self, server: grpc.Server) -> None:
        directory_service_pb2_grpc.add_DirectoryServiceServicer_to_server(self, server)

    def ListServiceEntries(
        self, request: directory_pb2.ListServiceEntriesRequest, context: grpc.ServicerContext
    ) -> directory_pb2.ListServiceEntriesResponse:
        response = directory_pb2.ListServiceEntriesResponse()
        with Reply(response, request, self._clock):
            response.service_entries.extend(self._entries)
        return response

    def GetServiceEntry(
        self, request: directory_pb2.GetServiceEntryRequest, context: grpc.ServicerContext
    ) -> directory_pb2.GetServiceEntryResponse:
        response = directory_pb2.GetServiceEntryResponse()
        with Reply(response, request, self._clock):
            if not request.service_name:
                raise InvalidRequest("service_name is empty")
            entry = self._by_name.get(request.service_name)
            if entry is None:
                response.status = directory_pb2.GetServiceEntryResponse.STATUS_NONEXISTENT_SERVICE
            else:
                response.service_entry.CopyFrom(entry)
                response.status = directory_pb2.GetServiceEntryResponse.STATUS_OK
        return response
