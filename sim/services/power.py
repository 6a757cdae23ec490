"""Power service: motor power on (IN_PROGRESS, then SUCCESS after a short delay) and off,
payload ports and Wi-Fi; fan power commands and fan information (`sim.services.fans`); the
primary safety-stop reset (this robot has no redundant safety stop: its hardware configuration
says so, and a redundant reset is answered STATUS_INCOMPATIBLE_HARDWARE_ERROR)."""

from __future__ import annotations

import grpc
from bosdyn.api import lease_pb2, power_pb2, power_service_pb2_grpc
from bosdyn.client.power import PowerClient

from sim.robot_clock import NSEC_PER_SEC, RobotClock
from sim.services.common import InvalidRequest, Reply, ServiceSpec
from sim.services.estop import LEVEL_NONE, EstopSystem
from sim.services.fans import FAN_NAMES, Fans
from sim.services.lease import LeaseManager
from sim.world import SimWorld

Req = power_pb2.PowerCommandRequest
FanResponse = power_pb2.FanPowerCommandResponse
SafetyStop = power_pb2.ResetSafetyStopRequest
SafetyStopResponse = power_pb2.ResetSafetyStopResponse
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
        self.fans = Fans()

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

    def FanPowerCommand(
        self, request: power_pb2.FanPowerCommandRequest, context: grpc.ServicerContext
    ) -> power_pb2.FanPowerCommandResponse:
        response = power_pb2.FanPowerCommandResponse()
        with Reply(response, request, self._clock):
            if not 0 <= request.percent_power <= 100:
                raise InvalidRequest(f"percent_power must be 0 to 100, not {request.percent_power}")
            duration_ns = request.duration.seconds * NSEC_PER_SEC + request.duration.nanos
            if duration_ns <= 0:
                raise InvalidRequest("duration must be positive")
            response.lease_use_result.CopyFrom(self._leases.check(request.lease, consumer=self.spec.name))
            if response.lease_use_result.status != lease_pb2.LeaseUseResult.STATUS_OK:
                return response
            command = self.fans.command(request.percent_power, self._clock.now_ns(), duration_ns)
            response.status = FanResponse.STATUS_OK
            response.command_id = command.command_id
            RobotClock.to_timestamp(command.end_ns, response.desired_end_time)
        return response

    def FanPowerCommandFeedback(
        self, request: power_pb2.FanPowerCommandFeedbackRequest, context: grpc.ServicerContext
    ) -> power_pb2.FanPowerCommandFeedbackResponse:
        response = power_pb2.FanPowerCommandFeedbackResponse()
        with Reply(response, request, self._clock):
            command = self.fans.get(request.command_id)
            if command is None:
                raise InvalidRequest(f"unknown fan command_id {request.command_id}")
            response.status = command.status(self._clock.now_ns())
            RobotClock.to_timestamp(command.end_ns, response.desired_end_time)
            if command.overridden_ns is not None:
                RobotClock.to_timestamp(command.overridden_ns, response.early_stop_time)
        return response

    def GetFanInformation(
        self, request: power_pb2.GetFanInformationRequest, context: grpc.ServicerContext
    ) -> power_pb2.GetFanInformationResponse:
        response = power_pb2.GetFanInformationResponse()
        with Reply(response, request, self._clock):
            body = self._world.snapshot()
            frequency = self.fans.frequency_hz(body.robot_ns, body.counters.power_w)
            for name in FAN_NAMES:
                response.fan_information[name].frequency = frequency
        return response

    def ResetSafetyStop(
        self, request: power_pb2.ResetSafetyStopRequest, context: grpc.ServicerContext
    ) -> power_pb2.ResetSafetyStopResponse:
        response = power_pb2.ResetSafetyStopResponse()
        with Reply(response, request, self._clock):
            response.lease_use_result.CopyFrom(self._leases.check(request.lease, consumer=self.spec.name))
            if response.lease_use_result.status != lease_pb2.LeaseUseResult.STATUS_OK:
                return response
            response.status = {
                SafetyStop.SAFETY_STOP_PRIMARY: SafetyStopResponse.STATUS_OK,
                SafetyStop.SAFETY_STOP_REDUNDANT: SafetyStopResponse.STATUS_INCOMPATIBLE_HARDWARE_ERROR,
            }.get(request.safety_stop_type, SafetyStopResponse.STATUS_UNKNOWN_STOP_TYPE)
        return response
