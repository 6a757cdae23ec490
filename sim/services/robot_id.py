"""Robot id service: who this robot is (serial, species, software version)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import grpc
from bosdyn.api import robot_id_pb2, robot_id_service_pb2_grpc
from bosdyn.client.robot_id import RobotIdClient

from sim.robot_clock import RobotClock
from sim.services.common import ROBOT_ID_AUTHORITY, Reply, ServiceSpec

SERIAL_NUMBER = "spot-sim-0001"
NICKNAME = "spot-sim"


def _api_version() -> tuple[int, int, int]:
    """The bosdyn-api version installed: the sim speaks exactly that protocol."""
    try:
        parts = [int(p) for p in version("bosdyn-api").split(".")[:3]]
    except (PackageNotFoundError, ValueError):
        parts = [5, 0, 0]
    while len(parts) < 3:
        parts.append(0)
    return parts[0], parts[1], parts[2]


def build_robot_id(serial_number: str = SERIAL_NUMBER, nickname: str = NICKNAME) -> robot_id_pb2.RobotId:
    major, minor, patch = _api_version()
    robot_id = robot_id_pb2.RobotId(
        serial_number=serial_number,
        species="spot",
        version="V3",
        nickname=nickname,
        computer_serial_number=f"{serial_number}-cpu",
    )
    release = robot_id.software_release
    release.version.major_version, release.version.minor_version, release.version.patch_level = major, minor, patch
    release.name = f"spot-cue-agent sim {major}.{minor}.{patch}"
    release.type = "sim"
    release.api_version = f"{major}.{minor}.{patch}"
    return robot_id


class RobotIdServicer(robot_id_service_pb2_grpc.RobotIdServiceServicer):
    spec = ServiceSpec(RobotIdClient.default_service_name, RobotIdClient.service_type, ROBOT_ID_AUTHORITY, False)

    def __init__(self, clock: RobotClock, robot_id: robot_id_pb2.RobotId | None = None) -> None:
        self._clock = clock
        self.robot_id = robot_id or build_robot_id()

    def add_to_server(self, server: grpc.Server) -> None:
        robot_id_service_pb2_grpc.add_RobotIdServiceServicer_to_server(self, server)

    def GetRobotId(self, request: robot_id_pb2.RobotIdRequest, context: grpc.ServicerContext) -> robot_id_pb2.RobotIdResponse:
        response = robot_id_pb2.RobotIdResponse()
        with Reply(response, request, self._clock):
            response.robot_id.CopyFrom(self.robot_id)
        return response
