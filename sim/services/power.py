"""Power service: motor power on (IN_PROGRESS, then SUCCESS after a short delay) and off."""

from __future__ import annotations

import grpc
from bosdyn.api import lease_pb2, power_pb2, power_service_pb2_grpc
from bosdyn.client.power import PowerClient

from sim.robot_clock import RobotClock
from sim.services.common import InvalidRequest, Reply, ServiceSpec
from sim.services.estop import LEVEL_NONE, EstopSystem
from sim.services.lease import LeaseManager
from sim.world import SimWorld

Req = power_pb2.PowerCommandRequest
_SUPPORTED = {
    Req.REQUEST_ON_MOTORS,
    Req.REQUEST_OFF_MOTORS,
    Req.REQUEST_ON_PAYLOAD_PORTS,
    Req.REQUEST_OFF_PAYLOAD_PORTS,
    Req.REQUEST_ON_WIFI_RADIO,
    Req.REQUEST_OFF_WIFI_RADIO,
}


class PowerServicer(power_service_pb2_grpc.PowerServiceServicer):
    spec = ServiceSpec(PowerClient.default_service_name, PowerClient.service_type)

    def __init__(self, clock: RobotClock, world: SimWorld, leases: LeaseManager, estop: EstopSystem) -> None:
        self._clock = clock
        self._world = world
        self._leases = leases
        self._estop = estop

    def add_to_server(self, server: grpc.Server) -> None:
        power_service_pb2_grpc.add_PowerServiceServicer_to_server(self, server)

    def PowerCommand(self, request: power_pb2.PowerCommandRequest, context: grpc.ServicerContext) -> power_pb2.PowerCommandResponse:
        response = power_pb2.PowerCommandResponse()
        with Reply(response, request, self._clock):
            if request.request not in _SUPPORTED:
                raise InvalidRequest(f"unsupported power request {request.request}")
            response.license_status = 1  # LicenseInfo.STATUS_VALID
            response.lease_use_result.CopyFrom(self._leases.check(request.lease, consumer=self.spec.name))
            if response.lease_use_result.status != lease_pb2.LeaseUseResult.STATUS_OK:
                return response
            if request.request == Req.REQUEST_ON_MOTORS and self._estop.level() != LEVEL_NONE:
                response.status = power_pb2.STATUS_ESTOPPED
                return response
            record = self._world.request_power(request.request)
            response.status = record.status
            response.power_command_id = record.power_command_id
        return response

    def PowerCommandFeedback(
        self, request: power_pb2.PowerCommandFeedbackRequest, context: grpc.ServicerContext
    ) -> power_pb2.PowerCommandFeedbackResponse:
        response = power_pb2.PowerCommandFeedbackResponse()
        with Reply(response, request, self._clock):
            record = self._world.power_feedback(request.power_command_id)
            if record is None:
                raise InvalidRequest(f"unknown power_command_id {request.power_command_id}")
            response.status = record.status
        return response
