"""Software E-Stop: configuration, endpoint registration, challenge/response check-ins, timeouts.

Semantics follow Spot's (bosdyn-api 5.x):
- The robot starts with an empty configuration: nothing is estopped (allowed since 3.3).
- Setting a configuration forgets every registration; an endpoint of the active configuration that
  is not registered counts as CUT until it registers and checks in at NONE.
- A check-in must answer the last challenge with its bitwise NOT (uint64); a wrong answer gets
  STATUS_INCORRECT_CHALLENGE_RESPONSE and a new challenge and does not reset the timeout. A stop
  request (CUT, SETTLE_THEN_CUT) is honoured even without a valid answer; releasing (NONE) is not.
- No valid check-in for `timeout`: SETTLE_THEN_CUT (sit, then cut); for `cut_power_timeout`
  (default timeout + 3 s): CUT.
The system stop level is the most severe endpoint level; the world reacts to it every physics step.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from bosdyn.api import estop_pb2, estop_service_pb2_grpc
from bosdyn.client.estop import EstopClient
from google.protobuf.duration_pb2 import Duration

from sim.robot_clock import NSEC_PER_SEC, RobotClock
from sim.services.common import InvalidRequest, Reply, ServiceSpec

LEVEL_CUT = estop_pb2.ESTOP_LEVEL_CUT
LEVEL_SETTLE_THEN_CUT = estop_pb2.ESTOP_LEVEL_SETTLE_THEN_CUT
LEVEL_NONE = estop_pb2.ESTOP_LEVEL_NONE
REQUIRED_ROLE = "PDB_rooted"
PDB_ROOTED_MAX_TIMEOUT_S = 65530.0
DEFAULT_SETTLE_S = 3.0  # cut_power_timeout when unset: timeout + the time to sit down safely
UINT64_MASK = (1 << 64) - 1

_SEVERITY = {LEVEL_CUT: 0, LEVEL_SETTLE_THEN_CUT: 1, LEVEL_NONE: 2}


def most_severe(a: int, b: int) -> int:
    return a if _SEVERITY.get(a, 0) <= _SEVERITY.get(b, 0) else b


def challenge_answer(challenge: int) -> int:
    return ~challenge & UINT64_MASK


def _duration_ns(d: Duration) -> int:
    return d.seconds * NSEC_PER_SEC + d.nanos


@dataclass
class _Endpoint:
    role: str
    name: str
    unique_id: str
    timeout_ns: int
    cut_power_timeout_ns: int
    registered: bool = False
    level: int = LEVEL_CUT  # most recently requested
    last_valid_ns: int | None = None
    challenge: int | None = None

    def to_proto(self) -> estop_pb2.EstopEndpoint:
        proto = estop_pb2.EstopEndpoint(role=self.role, name=self.name, unique_id=self.unique_id)
        proto.timeout.FromNanoseconds(self.timeout_ns)
        proto.cut_power_timeout.FromNanoseconds(self.cut_power_timeout_ns)
        return proto

    def level_at(self, now: int) -> tuple[int, str]:
        if not self.registered:
            return LEVEL_CUT, f"endpoint role {self.role!r} is not registered"
        if self.last_valid_ns is None:
            return self.level, f"{self.name!r} has not checked in yet" if self.level != LEVEL_NONE else ""
        silent = now - self.last_valid_ns
        if silent > self.cut_power_timeout_ns:
            return LEVEL_CUT, f"{self.name!r} timed out (cut power)"
        if silent > self.timeout_ns:
            return most_severe(self.level, LEVEL_SETTLE_THEN_CUT), f"{self.name!r} timed out"
        return self.level, f"{self.name!r} asserts {estop_pb2.EstopStopLevel.Name(self.level)}" if self.level != LEVEL_NONE else ""


class EstopSystem:
    """The E-Stop state machine (thread-safe). `motors_on()` guards configuration changes."""

    def __init__(self, clock: RobotClock, motors_on: Callable[[], bool]) -> None:
        self._clock = clock
        self._motors_on = motors_on
        self._lock = threading.Lock()
        self._config_id = self._new_id()
        self._endpoints: list[_Endpoint] = []

    @staticmethod
    def _new_id() -> str:
        return secrets.token_hex(8)

    # -- queries
    def level(self, now: int | None = None) -> int:
        now = self._clock.now_ns() if now is None else now
        with self._lock:
            level = LEVEL_NONE
            for endpoint in self._endpoints:
                level = most_severe(level, endpoint.level_at(now)[0])
            return level

    def status(self) -> estop_pb2.EstopSystemStatus:
        now = self._clock.now_ns()
        status = estop_pb2.EstopSystemStatus()
        level, details = LEVEL_NONE, []
        with self._lock:
            for endpoint in self._endpoints:
                ep_level, why = endpoint.level_at(now)
                level = most_severe(level, ep_level)
                if why:
                    details.append(why)
                with_status = status.endpoints.add(stop_level=ep_level)
                with_status.endpoint.CopyFrom(endpoint.to_proto())
                if endpoint.last_valid_ns is not None:
                    with_status.time_since_valid_response.FromNanoseconds(now - endpoint.last_valid_ns)
        status.stop_level = level
        status.stop_level_details = "; ".join(details) if details else "not estopped"
        return status

    def config(self) -> estop_pb2.EstopConfig:
        with self._lock:
            return self._config_locked()

    def _config_locked(self) -> estop_pb2.EstopConfig:
        config = estop_pb2.EstopConfig(unique_id=self._config_id)
        config.endpoints.extend(endpoint.to_proto() for endpoint in self._endpoints)
        return config

    # -- changes
    def set_config(self, config: estop_pb2.EstopConfig, target_config_id: str) -> tuple[int, estop_pb2.EstopConfig]:
        endpoints = []
        for proto in config.endpoints:
            if not proto.role:
                raise InvalidRequest("every endpoint in the configuration needs a role")
            timeout_ns = _duration_ns(proto.timeout)
            if timeout_ns <= 0:
                raise InvalidRequest(f"endpoint role {proto.role!r} needs a positive timeout")
            if proto.role == REQUIRED_ROLE and timeout_ns > PDB_ROOTED_MAX_TIMEOUT_S * NSEC_PER_SEC:
                raise InvalidRequest(f"{REQUIRED_ROLE} endpoint timeout must be <= {PDB_ROOTED_MAX_TIMEOUT_S:.0f} s")
            cut_ns = _duration_ns(proto.cut_power_timeout) if proto.HasField("cut_power_timeout") else 0
            if cut_ns <= timeout_ns:
                cut_ns = timeout_ns + int(DEFAULT_SETTLE_S * NSEC_PER_SEC)
            endpoints.append(
                _Endpoint(proto.role, proto.name, proto.unique_id or self._new_id(), timeout_ns, cut_ns)
            )
        motors_on = self._motors_on()
        with self._lock:
            if target_config_id != self._config_id:
                return estop_pb2.SetEstopConfigResponse.STATUS_INVALID_ID, self._config_locked()
            if motors_on:
                return estop_pb2.SetEstopConfigResponse.STATUS_MOTORS_ON, self._config_locked()
            self._config_id = self._new_id()
            self._endpoints = endpoints
            return estop_pb2.SetEstopConfigResponse.STATUS_SUCCESS, self._config_locked()

    def register(
        self, target_config_id: str, target: estop_pb2.EstopEndpoint, new: estop_pb2.EstopEndpoint
    ) -> tuple[int, estop_pb2.EstopEndpoint | None]:
        Status = estop_pb2.RegisterEstopEndpointResponse
        with self._lock:
            if target_config_id != self._config_id:
                return Status.STATUS_CONFIG_MISMATCH, None
            candidates = [
                e for e in self._endpoints
                if e.role == target.role and (not target.unique_id or e.unique_id == target.unique_id)
            ]
            if not candidates:
                return Status.STATUS_ENDPOINT_MISMATCH, None
            if new.role and new.role != target.role:
                return Status.STATUS_INVALID_ENDPOINT, None
            endpoint = next((e for e in candidates if not e.registered), candidates[0])
            if new.HasField("timeout"):
                timeout_ns = _duration_ns(new.timeout)
                if timeout_ns <= 0:
                    return Status.STATUS_INVALID_ENDPOINT, None
                endpoint.timeout_ns = timeout_ns
                cut_ns = _duration_ns(new.cut_power_timeout) if new.HasField("cut_power_timeout") else 0
                endpoint.cut_power_timeout_ns = (
                    cut_ns if cut_ns > timeout_ns else timeout_ns + int(DEFAULT_SETTLE_S * NSEC_PER_SEC)
                )
            endpoint.name = new.name or endpoint.name
            endpoint.unique_id = self._new_id()
            endpoint.registered = True
            endpoint.level = LEVEL_CUT
            endpoint.last_valid_ns = None
            endpoint.challenge = None
            return Status.STATUS_SUCCESS, endpoint.to_proto()

    def deregister(self, target_config_id: str, target: estop_pb2.EstopEndpoint) -> int:
        Status = estop_pb2.DeregisterEstopEndpointResponse
        motors_on = self._motors_on()
        with self._lock:
            if target_config_id != self._config_id:
                return Status.STATUS_CONFIG_MISMATCH
            endpoint = next((e for e in self._endpoints if e.registered and e.unique_id == target.unique_id), None)
            if endpoint is None:
                return Status.STATUS_ENDPOINT_MISMATCH
            if motors_on:
                return Status.STATUS_MOTORS_ON
            endpoint.registered = False
            endpoint.challenge = None
            endpoint.last_valid_ns = None
            return Status.STATUS_SUCCESS

    def check_in(self, endpoint_id: str, stop_level: int, challenge: int, answer: int) -> tuple[int, int]:
        """Returns (EstopCheckInResponse.Status, next challenge)."""
        Status = estop_pb2.EstopCheckInResponse
        if stop_level not in _SEVERITY:
            raise InvalidRequest(f"invalid stop_level {stop_level}")
        now = self._clock.now_ns()
        with self._lock:
            endpoint = next((e for e in self._endpoints if e.registered and e.unique_id == endpoint_id), None)
            if endpoint is None:
                return Status.STATUS_ENDPOINT_UNKNOWN, 0
            valid = (
                endpoint.challenge is not None
                and challenge == endpoint.challenge
                and answer == challenge_answer(endpoint.challenge)
            )
            if valid:
                endpoint.level = stop_level
                endpoint.last_valid_ns = now
                status = Status.STATUS_OK
            else:
                # A request to stop is honoured regardless; only releasing needs a valid answer.
                endpoint.level = most_severe(endpoint.level, stop_level)
                status = Status.STATUS_INCORRECT_CHALLENGE_RESPONSE
            endpoint.challenge = secrets.randbits(64)
            return status, endpoint.challenge


class EstopServicer(estop_service_pb2_grpc.EstopServiceServicer):
    spec = ServiceSpec(EstopClient.default_service_name, EstopClient.service_type)

    def __init__(self, clock: RobotClock, system: EstopSystem) -> None:
        self._clock = clock
        self.system = system

    def add_to_server(self, server: grpc.Server) -> None:
        estop_service_pb2_grpc.add_EstopServiceServicer_to_server(self, server)

    def RegisterEstopEndpoint(
        self, request: estop_pb2.RegisterEstopEndpointRequest, context: grpc.ServicerContext
    ) -> estop_pb2.RegisterEstopEndpointResponse:
        response = estop_pb2.RegisterEstopEndpointResponse()
        with Reply(response, request, self._clock):
            response.request.CopyFrom(request)
            status, endpoint = self.system.register(request.target_config_id, request.target_endpoint, request.new_endpoint)
            response.status = status
            if endpoint is not None:
                response.new_endpoint.CopyFrom(endpoint)
        return response

    def DeregisterEstopEndpoint(
        self, request: estop_pb2.DeregisterEstopEndpointRequest, context: grpc.ServicerContext
    ) -> estop_pb2.DeregisterEstopEndpointResponse:
        response = estop_pb2.DeregisterEstopEndpointResponse()
        with Reply(response, request, self._clock):
            response.request.CopyFrom(request)
            response.status = self.system.deregister(request.target_config_id, request.target_endpoint)
        return response

    def EstopCheckIn(
        self, request: estop_pb2.EstopCheckInRequest, context: grpc.ServicerContext
    ) -> estop_pb2.EstopCheckInResponse:
        response = estop_pb2.EstopCheckInResponse()
        with Reply(response, request, self._clock):
            response.request.CopyFrom(request)
            status, challenge = self.system.check_in(
                request.endpoint.unique_id, request.stop_level, request.challenge, request.response
            )
            response.status = status
            response.challenge = challenge
        return response

    def GetEstopConfig(
        self, request: estop_pb2.GetEstopConfigRequest, context: grpc.ServicerContext
    ) -> estop_pb2.GetEstopConfigResponse:
        response = estop_pb2.GetEstopConfigResponse()
        with Reply(response, request, self._clock):
            response.request.CopyFrom(request)
            response.active_config.CopyFrom(self.system.config())
        return response

    def SetEstopConfig(
        self, request: estop_pb2.SetEstopConfigRequest, context: grpc.ServicerContext
    ) -> estop_pb2.SetEstopConfigResponse:
        response = estop_pb2.SetEstopConfigResponse()
        with Reply(response, request, self._clock):
            response.request.CopyFrom(request)
            status, config = self.system.set_config(request.config, request.target_config_id)
            response.status = status
            response.active_config.CopyFrom(config)
        return response

    def GetEstopSystemStatus(
        self, request: estop_pb2.GetEstopSystemStatusRequest, context: grpc.ServicerContext
    ) -> estop_pb2.GetEstopSystemStatusResponse:
        response = estop_pb2.GetEstopSystemStatusResponse()
        with Reply(response, request, self._clock):
            response.status.CopyFrom(self.system.status())
        return response
