"""What every simulated service shares: response headers on the robot clock, request errors, and
the description of a service (name, type, authority) that the directory lists.

Headers are filled by hand rather than with `bosdyn.client.server_util.populate_response_header`
for two reasons: timestamps must be on the *robot* clock (time sync measures them), and packing a
copy of every request into `header.request` costs more than the rest of a small RPC.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Generic, Protocol, TypeVar

import grpc
from bosdyn.api import header_pb2

from sim.robot_clock import RobotClock

_LOGGER = logging.getLogger(__name__)

# The authority every robot service lives under on a real Spot; bootstrap services have their own.
API_AUTHORITY = "api.spot.robot"
AUTH_AUTHORITY = "auth.spot.robot"
ROBOT_ID_AUTHORITY = "id.spot.robot"
PAYLOAD_REGISTRATION_AUTHORITY = "payload-registration.spot.robot"
ALL_AUTHORITIES = (API_AUTHORITY, AUTH_AUTHORITY, ROBOT_ID_AUTHORITY, PAYLOAD_REGISTRATION_AUTHORITY)

CODE_OK = header_pb2.CommonError.CODE_OK
CODE_UNSPECIFIED = header_pb2.CommonError.CODE_UNSPECIFIED
CODE_INVALID_REQUEST = header_pb2.CommonError.CODE_INVALID_REQUEST
CODE_INTERNAL_SERVER_ERROR = header_pb2.CommonError.CODE_INTERNAL_SERVER_ERROR


class InvalidRequest(Exception):
    """Raised inside a handler: answered with header error CODE_INVALID_REQUEST and this message."""


@dataclass(frozen=True)
class ServiceSpec:
    """How a service appears in the directory (names and types from the SDK's own clients)."""

    name: str
    type: str
    authority: str = API_AUTHORITY
    user_token_required: bool = True


ResponseT = TypeVar("ResponseT")


class Reply(Generic[ResponseT]):
    """`with Reply(response, request, clock) as r:` fills the header like a robot does.

    Echoes the request header, stamps received/response times on the robot clock, sets CODE_OK
    unless the handler set an error, and turns `InvalidRequest` into CODE_INVALID_REQUEST and any
    other exception into CODE_INTERNAL_SERVER_ERROR (logged) instead of a bare gRPC failure.
    """

    __slots__ = ("clock", "response")

    def __init__(self, response: ResponseT, request: object, clock: RobotClock) -> None:
        self.response = response
        self.clock = clock
        header = response.header  # type: ignore[attr-defined]
        header.request_header.CopyFrom(request.header)  # type: ignore[attr-defined]
        RobotClock.to_timestamp(clock.now_ns(), header.request_received_timestamp)

    def __enter__(self) -> ResponseT:
        return self.response

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        header = self.response.header  # type: ignore[attr-defined]
        if exc is not None:
            if isinstance(exc, InvalidRequest):
                header.error.code = CODE_INVALID_REQUEST
                header.error.message = str(exc)
            elif isinstance(exc, Exception):
                _LOGGER.error("sim service handler failed", exc_info=(exc_type, exc, tb))  # type: ignore[arg-type]
                header.error.code = CODE_INTERNAL_SERVER_ERROR
                header.error.message = f"[{type(exc).__name__}] {exc}"
            else:
                return False  # KeyboardInterrupt, SystemExit: let them through
        elif header.error.code == CODE_UNSPECIFIED:
            header.error.code = CODE_OK
        RobotClock.to_timestamp(self.clock.now_ns(), header.response_timestamp)
        return True


class SimService(Protocol):
    """What the server needs from each simulated service."""

    spec: ClassVar[ServiceSpec]

    def add_to_server(self, server: grpc.Server) -> None: ...
