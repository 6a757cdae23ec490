"""Fault service: clients raise and clear service faults, which robot state reports in
`service_fault_state` (the tablet shows them; `python -m bosdyn.client HOST fault show` lists them).

A fault is identified by (fault_name, service_name, payload_guid), as the proto says: raising one
that is already active answers STATUS_FAULT_ALREADY_ACTIVE and keeps the oldest; clearing one
that is not active answers STATUS_FAULT_NOT_ACTIVE. A payload's faults get its GUID filled in
when the payload raised it (a payload token) and left the GUID empty.
"""

from __future__ import annotations

import threading

import grpc
from bosdyn.api import fault_service_pb2_grpc, robot_state_pb2, service_fault_pb2
from bosdyn.client.fault import FaultClient

from sim.robot_clock import RobotClock
from sim.services.auth import TokenStore
from sim.services.common import InvalidRequest, Reply, ServiceSpec

TriggerStatus = service_fault_pb2.TriggerServiceFaultResponse
ClearStatus = service_fault_pb2.ClearServiceFaultResponse
FaultKey = tuple[str, str, str]
PAYLOAD_SUBJECT_PREFIX = "payload:"  # what payload-registration puts in a payload's token


def _key(fault_id: service_fault_pb2.ServiceFaultId) -> FaultKey:
    return fault_id.fault_name, fault_id.service_name, fault_id.payload_guid


class ServiceFaults:
    """The active service faults (thread-safe). `version` changes with every raise or clear, so
    robot state knows when its cached state is out of date."""

    def __init__(self, clock: RobotClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._active: dict[FaultKey, service_fault_pb2.ServiceFault] = {}
        self.version = 0

    def trigger(self, fault: service_fault_pb2.ServiceFault) -> bool:
        """Raise `fault` (onset now on the robot clock); False if one with its id is active."""
        with self._lock:
            key = _key(fault.fault_id)
            if key in self._active:
                return False
            stored = service_fault_pb2.ServiceFault()
            stored.CopyFrom(fault)
            stored.ClearField("duration")
            RobotClock.to_timestamp(self._clock.now_ns(), stored.onset_timestamp)
            self._active[key] = stored
            self.version += 1
            return True

    def clear(self, fault_id: service_fault_pb2.ServiceFaultId, all_of_service: bool, all_of_payload: bool) -> int:
        """Clear the matching faults; returns how many were cleared."""
        name, service, guid = _key(fault_id)
        with self._lock:
            doomed = [
                key
                for key in self._active
                if key == (name, service, guid)
                or (all_of_service and service and key[1] == service)
                or (all_of_payload and guid and key[2] == guid)
            ]
            for key in doomed:
                del self._active[key]
            if doomed:
                self.version += 1
            return len(doomed)

    def active(self) -> list[service_fault_pb2.ServiceFault]:
        with self._lock:
            return list(self._active.values())

    def fill(self, state: robot_state_pb2.RobotState, robot_ns: int) -> None:
        """Robot state's `service_fault_state`, each fault with its duration at `robot_ns`."""
        for fault in self.active():
            item = state.service_fault_state.faults.add()
            item.CopyFrom(fault)
            onset_ns = RobotClock.from_timestamp(fault.onset_timestamp)
            item.duration.FromNanoseconds(max(0, robot_ns - onset_ns))


class FaultServicer(fault_service_pb2_grpc.FaultServiceServicer):
    spec = ServiceSpec(FaultClient.default_service_name, FaultClient.service_type)

    def __init__(self, clock: RobotClock, faults: ServiceFaults, tokens: TokenStore) -> None:
        self._clock = clock
        self._faults = faults
        self._tokens = tokens

    def add_to_server(self, server: grpc.Server) -> None:
        fault_service_pb2_grpc.add_FaultServiceServicer_to_server(self, server)

    def _caller_payload(self, context: grpc.ServicerContext) -> str:
        """The GUID of the payload making this call, '' for a user."""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                subject = self._tokens.subject(value[7:]) or ""
                return subject[len(PAYLOAD_SUBJECT_PREFIX):] if subject.startswith(PAYLOAD_SUBJECT_PREFIX) else ""
        return ""

    def TriggerServiceFault(
        self, request: service_fault_pb2.TriggerServiceFaultRequest, context: grpc.ServicerContext
    ) -> service_fault_pb2.TriggerServiceFaultResponse:
        response = service_fault_pb2.TriggerServiceFaultResponse()
        with Reply(response, request, self._clock):
            fault = request.fault
            if not fault.fault_id.fault_name:
                raise InvalidRequest("fault.fault_id.fault_name is empty")
            if not fault.fault_id.service_name and not fault.fault_id.payload_guid:
                raise InvalidRequest("fault.fault_id needs a service_name or a payload_guid")
            if not fault.fault_id.payload_guid:
                fault.fault_id.payload_guid = self._caller_payload(context)
            ok = self._faults.trigger(fault)
            response.status = TriggerStatus.STATUS_OK if ok else TriggerStatus.STATUS_FAULT_ALREADY_ACTIVE
        return response

    def ClearServiceFault(
        self, request: service_fault_pb2.ClearServiceFaultRequest, context: grpc.ServicerContext
    ) -> service_fault_pb2.ClearServiceFaultResponse:
        response = service_fault_pb2.ClearServiceFaultResponse()
        with Reply(response, request, self._clock):
            fault_id = service_fault_pb2.ServiceFaultId()
            fault_id.CopyFrom(request.fault_id)
            if not fault_id.payload_guid and not request.clear_all_service_faults:
                fault_id.payload_guid = self._caller_payload(context)
            cleared = self._faults.clear(fault_id, request.clear_all_service_faults, request.clear_all_payload_faults)
            response.status = ClearStatus.STATUS_OK if cleared else ClearStatus.STATUS_FAULT_NOT_ACTIVE
        return response
