"""Directory service: lists every service the sim serves, with its type and authority, plus the
services other computers registered (`directory_registration.py`), as a robot's directory does.

`Directory` is the one table both services share. A registered entry keeps its endpoint (where
the robot dials it: the network compute bridge uses it) and its heartbeat: every register or
update request for the name refreshes `last_update`. An entry whose heartbeat is older than its
`liveness_timeout_secs` stays listed (a robot does not drop it) but raises a liveness service
fault in the robot state until the next heartbeat or its unregistration, as Spot does.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from bosdyn.api import directory_pb2, directory_service_pb2_grpc, robot_state_pb2, service_fault_pb2
from bosdyn.client.directory import DirectoryClient

from sim.robot_clock import NSEC_PER_SEC, RobotClock
from sim.services.common import API_AUTHORITY, InvalidRequest, Reply, ServiceSpec

LIVENESS_FAULT_NAME = "Directory liveness timeout"


@dataclass(frozen=True)
class Registration:
    """A service another computer registered: its directory entry and where to reach it."""

    entry: directory_pb2.ServiceEntry
    host_ip: str
    port: int

    @property
    def address(self) -> str:
        """`host:port` for a gRPC channel (IPv6 hosts bracketed)."""
        host = f"[{self.host_ip}]" if ":" in self.host_ip and not self.host_ip.startswith("[") else self.host_ip
        return f"{host}:{self.port}"


def full_authority(authority: str) -> str:
    """A bare DNS label (`worker`) becomes `worker.spot.robot`, as directory.proto describes."""
    return authority if "." in authority else f"{authority}.spot.robot"


class Directory:
    """The robot's service table: the sim's own services (fixed) and registered ones (thread-safe)."""

    def __init__(self, clock: RobotClock) -> None:
        self._clock = clock
        self._builtin: dict[str, directory_pb2.ServiceEntry] = {}
        self._registered: dict[str, Registration] = {}
        self._lock = threading.Lock()

    def add_builtin(self, specs: Sequence[ServiceSpec]) -> None:
        """The sim's own services (once they exist: robot state reads the directory before)."""
        now = self._clock.now_ns()
        for spec in specs:
            entry = directory_pb2.ServiceEntry(
                name=spec.name, type=spec.type, authority=spec.authority, user_token_required=spec.user_token_required
            )
            RobotClock.to_timestamp(now, entry.last_update)
            with self._lock:
                self._builtin[entry.name] = entry

    def entries(self) -> list[directory_pb2.ServiceEntry]:
        with self._lock:
            return [*self._builtin.values(), *(r.entry for r in self._registered.values())]

    def entry(self, name: str) -> directory_pb2.ServiceEntry | None:
        with self._lock:
            registration = self._registered.get(name)
            return registration.entry if registration is not None else self._builtin.get(name)

    def registration(self, name: str) -> Registration | None:
        with self._lock:
            return self._registered.get(name)

    def registrations(self, service_type: str) -> list[Registration]:
        with self._lock:
            return [r for r in self._registered.values() if r.entry.type == service_type]

    def register(self, entry: directory_pb2.ServiceEntry, endpoint: directory_pb2.Endpoint, payload_guid: str) -> bool:
        """Add a service; False when the name is taken (a registered one gets a heartbeat anyway)."""
        with self._lock:
            existing = self._registered.get(entry.name)
            if existing is not None:
                RobotClock.to_timestamp(self._clock.now_ns(), existing.entry.last_update)
                return False
            if entry.name in self._builtin:
                return False
            self._registered[entry.name] = self._new_registration(entry, endpoint, payload_guid)
            return True

    def update(self, entry: directory_pb2.ServiceEntry, endpoint: directory_pb2.Endpoint, payload_guid: str) -> bool:
        """Replace a registered service's entry and endpoint; False when no such registration."""
        with self._lock:
            if entry.name in self._builtin:
                raise InvalidRequest(f"{entry.name!r} is a robot service; it cannot be updated")
            if entry.name not in self._registered:
                return False
            self._registered[entry.name] = self._new_registration(entry, endpoint, payload_guid)
            return True

    def unregister(self, name: str) -> bool:
        with self._lock:
            if name in self._builtin:
                raise InvalidRequest(f"{name!r} is a robot service; it cannot be unregistered")
            return self._registered.pop(name, None) is not None

    def _new_registration(
        self, entry: directory_pb2.ServiceEntry, endpoint: directory_pb2.Endpoint, payload_guid: str
    ) -> Registration:
        """Validate a request's entry and endpoint (lock held) and stamp the heartbeat."""
        if not entry.name:
            raise InvalidRequest("service_entry.name is empty")
        if not entry.type:
            raise InvalidRequest("service_entry.type is empty")
        if not entry.authority:
            raise InvalidRequest("service_entry.authority is empty")
        if not 0 <= endpoint.port <= 65535:
            raise InvalidRequest(f"endpoint.port {endpoint.port} is not between 0 and 65535")
        if entry.liveness_timeout_secs < 0:
            raise InvalidRequest("service_entry.liveness_timeout_secs is negative")
        stored = directory_pb2.ServiceEntry()
        stored.CopyFrom(entry)
        stored.authority = full_authority(entry.authority)
        # (authority, type) routes a call on the robot, so it must name one service.
        for other in [*self._builtin.values(), *(r.entry for r in self._registered.values())]:
            if other.name != stored.name and (other.authority, other.type) == (stored.authority, stored.type):
                raise InvalidRequest(f"service {other.name!r} already has authority {stored.authority!r} and type {stored.type!r}")
        stored.host_payload_guid = payload_guid  # set by the robot from the caller's token, never the client
        RobotClock.to_timestamp(self._clock.now_ns(), stored.last_update)
        return Registration(stored, endpoint.host_ip, endpoint.port)

    @property
    def version(self) -> int:
        """Changes when the set of lapsed services does (robot state's cache key: a lapse comes
        with time, not with an event)."""
        return hash(tuple(sorted(f.fault_id.service_name for f in self.liveness_faults())))

    def fill(self, state: robot_state_pb2.RobotState, robot_ns: int) -> None:
        """Robot state's `service_fault_state`: the liveness faults, as the robot raises them."""
        state.service_fault_state.faults.extend(self.liveness_faults())

    def liveness_faults(self) -> list[service_fault_pb2.ServiceFault]:
        """One fault per registered service whose heartbeats stopped for longer than its timeout."""
        now = self._clock.now_ns()
        faults = []
        with self._lock:
            for registration in self._registered.values():
                entry = registration.entry
                timeout_ns = int(entry.liveness_timeout_secs * NSEC_PER_SEC)
                last_ns = entry.last_update.seconds * NSEC_PER_SEC + entry.last_update.nanos
                if timeout_ns <= 0 or now - last_ns <= timeout_ns:
                    continue
                fault = service_fault_pb2.ServiceFault(
                    error_message=f"no heartbeat from service {entry.name!r} for {entry.liveness_timeout_secs:g} s",
                    severity=service_fault_pb2.ServiceFault.SEVERITY_CRITICAL,
                )
                fault.fault_id.fault_name = LIVENESS_FAULT_NAME
                fault.fault_id.service_name = entry.name
                fault.fault_id.payload_guid = entry.host_payload_guid
                RobotClock.to_timestamp(last_ns + timeout_ns, fault.onset_timestamp)
                faults.append(fault)
        return faults


class DirectoryServicer(directory_service_pb2_grpc.DirectoryServiceServicer):
    spec = ServiceSpec(DirectoryClient.default_service_name, DirectoryClient.service_type, API_AUTHORITY)

    def __init__(self, clock: RobotClock, directory: Directory) -> None:
        self._clock = clock
        self._directory = directory

    def add_to_server(self, server: grpc.Server) -> None:
        directory_service_pb2_grpc.add_DirectoryServiceServicer_to_server(self, server)

    def ListServiceEntries(
        self, request: directory_pb2.ListServiceEntriesRequest, context: grpc.ServicerContext
    ) -> directory_pb2.ListServiceEntriesResponse:
        response = directory_pb2.ListServiceEntriesResponse()
        with Reply(response, request, self._clock):
            response.service_entries.extend(self._directory.entries())
        return response

    def GetServiceEntry(
        self, request: directory_pb2.GetServiceEntryRequest, context: grpc.ServicerContext
    ) -> directory_pb2.GetServiceEntryResponse:
        response = directory_pb2.GetServiceEntryResponse()
        with Reply(response, request, self._clock):
            if not request.service_name:
                raise InvalidRequest("service_name is empty")
            entry = self._directory.entry(request.service_name)
            if entry is None:
                response.status = directory_pb2.GetServiceEntryResponse.STATUS_NONEXISTENT_SERVICE
            else:
                response.service_entry.CopyFrom(entry)
                response.status = directory_pb2.GetServiceEntryResponse.STATUS_OK
        return response
