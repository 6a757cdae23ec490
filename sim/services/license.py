"""License service: the license a Spot reports (`python -m bosdyn.client HOST license`).

The sim's license is valid on the robot clock (issued 30 days before the sim started, valid a
year after), covers the sim's own serial number, and lists as features only what the sim
simulates. Programs gate features on `get_feature_enabled([code])` with a service or license name
(the SDK's docking example asks for "docking", choreography ones for "choreography"): those the
sim does not simulate answer False, so such a program stops with its own "not licensed" message
instead of failing later on a service the sim does not have.
"""

from __future__ import annotations

from datetime import datetime, timezone

import grpc
from bosdyn.api import license_pb2, license_service_pb2_grpc
from bosdyn.client.license import LicenseClient

from sim.robot_clock import NSEC_PER_SEC, RobotClock
from sim.services.common import Reply, ServiceSpec

DAY_NS = 86_400 * NSEC_PER_SEC
ISSUED_DAYS_BEFORE_START = 30
VALID_DAYS = 365
# Feature codes are service / license names; these are the ones the sim serves.
LICENSED_FEATURES = (
    "auth",
    "robot-state",
    "robot-command",
    "image",
    "world-objects",
    "local-grid-service",
    "data-buffer",
    "payload",
    "fault",
)


def build_license(serial_number: str, start_robot_ns: int) -> license_pb2.LicenseInfo:
    info = license_pb2.LicenseInfo(
        status=license_pb2.LicenseInfo.STATUS_VALID,
        id=f"SIM-{serial_number}-{datetime.fromtimestamp(start_robot_ns / NSEC_PER_SEC, timezone.utc):%Y%m%d}",
        robot_serial=serial_number,
        licensed_features=LICENSED_FEATURES,
    )
    RobotClock.to_timestamp(start_robot_ns - ISSUED_DAYS_BEFORE_START * DAY_NS, info.not_valid_before)
    RobotClock.to_timestamp(start_robot_ns + VALID_DAYS * DAY_NS, info.not_valid_after)
    return info


class LicenseServicer(license_service_pb2_grpc.LicenseServiceServicer):
    spec = ServiceSpec(LicenseClient.default_service_name, LicenseClient.service_type)

    def __init__(self, clock: RobotClock, serial_number: str) -> None:
        self._clock = clock
        self.license = build_license(serial_number, clock.now_ns() // NSEC_PER_SEC * NSEC_PER_SEC)

    def add_to_server(self, server: grpc.Server) -> None:
        license_service_pb2_grpc.add_LicenseServiceServicer_to_server(self, server)

    def GetLicenseInfo(
        self, request: license_pb2.GetLicenseInfoRequest, context: grpc.ServicerContext
    ) -> license_pb2.GetLicenseInfoResponse:
        response = license_pb2.GetLicenseInfoResponse()
        with Reply(response, request, self._clock):
            response.license.CopyFrom(self.license)
        return response

    def GetFeatureEnabled(
        self, request: license_pb2.GetFeatureEnabledRequest, context: grpc.ServicerContext
    ) -> license_pb2.GetFeatureEnabledResponse:
        response = license_pb2.GetFeatureEnabledResponse()
        with Reply(response, request, self._clock):
            licensed = set(self.license.licensed_features)
            for code in request.feature_codes:
                response.feature_enabled[code] = code in licensed
        return response
