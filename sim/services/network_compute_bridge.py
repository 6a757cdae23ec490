"""The robot's Network Compute Bridge: forwards compute requests to the workers registered in the
directory (type `bosdyn.api.NetworkComputeBridgeWorker`) and lists their models.

As on Spot, the bridge dials a worker at the `host_ip:port` it registered, over plain
(insecure) gRPC; the worker never talks to the client. Given an image source, the bridge
captures the image itself from the sim's cameras (`ImageServicer.capture`), rotates it for the
worker when the deprecated `rotate_image` asks (`ncb_images`), and adds depth to the objects the
worker found. Requests follow the proto's table: the deprecated `input_data` calls the worker's
`NetworkCompute`; `input_data_bridge` calls `WorkerCompute` and falls back to `NetworkCompute`
(converting its answer) for a worker without it.

Errors a client sees: a name not registered as a worker -> *_EXTERNAL_SERVICE_NOT_FOUND; a worker
that fails, answers with an error or does not answer in time (the client's own deadline, less a
margin, or `worker_timeout_s`) -> *_EXTERNAL_SERVER_ERROR with the reason in the header message.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from typing import TypeVar

import grpc
from bosdyn.api import image_pb2, network_compute_bridge_service_pb2_grpc
from bosdyn.api import network_compute_bridge_pb2 as ncb
from bosdyn.client.channel import generate_channel_options
from bosdyn.client.network_compute_bridge_client import NetworkComputeBridgeClient

from sim.robot_clock import RobotClock
from sim.services import ncb_images
from sim.services.common import InvalidRequest, Reply, ServiceSpec
from sim.services.directory import Directory, Registration
from sim.services.image import ImageServicer

_LOGGER = logging.getLogger(__name__)

WORKER_SERVICE_TYPE = "bosdyn.api.NetworkComputeBridgeWorker"
DEFAULT_WORKER_TIMEOUT_S = 10.0
# Answer this long before the client's deadline, so it gets a status instead of DEADLINE_EXCEEDED.
DEADLINE_MARGIN_S = 0.25
_IMAGE_SERVICE_NAMES = ("", "image")

ResponseT = TypeVar("ResponseT")


class WorkerError(Exception):
    """A worker call failed: the message is what the client reads in the response header."""


class NetworkComputeBridgeServicer(network_compute_bridge_service_pb2_grpc.NetworkComputeBridgeServicer):
    spec = ServiceSpec(NetworkComputeBridgeClient.default_service_name, NetworkComputeBridgeClient.service_type)

    def __init__(
        self, clock: RobotClock, directory: Directory, images: ImageServicer, worker_timeout_s: float = DEFAULT_WORKER_TIMEOUT_S
    ) -> None:
        self._clock = clock
        self._directory = directory
        self._images = images
        self.worker_timeout_s = worker_timeout_s
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    def add_to_server(self, server: grpc.Server) -> None:
        network_compute_bridge_service_pb2_grpc.add_NetworkComputeBridgeServicer_to_server(self, server)

    def close(self) -> None:
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()

    # ------------------------------------------------------------------ workers
    def _worker(self, registration: Registration) -> network_compute_bridge_service_pb2_grpc.NetworkComputeBridgeWorkerStub:
        with self._lock:
            channel = self._channels.get(registration.address)
            if channel is None:
                channel = grpc.insecure_channel(registration.address, options=generate_channel_options())
                self._channels[registration.address] = channel
        return network_compute_bridge_service_pb2_grpc.NetworkComputeBridgeWorkerStub(channel)

    def _timeout(self, context: grpc.ServicerContext) -> float:
        remaining = context.time_remaining()
        if remaining is None:
            return self.worker_timeout_s
        return max(0.05, min(self.worker_timeout_s, remaining - DEADLINE_MARGIN_S))

    def _call(self, name: str, rpc: Callable[..., ResponseT], request: object, timeout: float) -> ResponseT:
        """One worker RPC; gRPC failures become WorkerError (UNIMPLEMENTED is re-raised as is)."""
        try:
            response = rpc(request, timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            if code == grpc.StatusCode.UNIMPLEMENTED:
                raise
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise WorkerError(f"worker {name!r} did not answer within {timeout:.2f} s") from exc
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            raise WorkerError(f"worker {name!r} failed: {code.name if code else 'error'}: {details}") from exc
        error = response.header.error  # type: ignore[attr-defined]
        if error.code not in (error.CODE_UNSPECIFIED, error.CODE_OK):
            raise WorkerError(f"worker {name!r} answered {error.Code.Name(error.code)}: {error.message}")
        return response

    # ------------------------------------------------------------------ ListAvailableModels
    def ListAvailableModels(self, request: ncb.ListAvailableModelsRequest, context: grpc.ServicerContext) -> ncb.ListAvailableModelsResponse:
        response = ncb.ListAvailableModelsResponse()
        with Reply(response, request, self._clock):
            name = request.server_config.service_name
            if name:
                registration = self._directory.registration(name)
                if registration is None or registration.entry.type != WORKER_SERVICE_TYPE:
                    response.status = ncb.LIST_AVAILABLE_MODELS_STATUS_EXTERNAL_SERVICE_NOT_FOUND
                    response.header.error.message = f"no {WORKER_SERVICE_TYPE} named {name!r} in the directory"
                    return response
                registrations = [registration]
            else:
                registrations = self._directory.registrations(WORKER_SERVICE_TYPE)
            errors = []
            for registration in registrations:
                try:
                    _merge_models(response, self._list_models(registration, request, self._timeout(context)))
                except (WorkerError, grpc.RpcError) as exc:
                    errors.append(str(exc) if isinstance(exc, WorkerError) else f"worker {registration.entry.name!r}: {exc}")
            if errors and (name or not response.models.data):
                response.status = ncb.LIST_AVAILABLE_MODELS_STATUS_EXTERNAL_SERVER_ERROR
                response.header.error.message = "; ".join(errors)
            else:
                response.status = ncb.LIST_AVAILABLE_MODELS_STATUS_SUCCESS
        return response

    def _list_models(
        self, registration: Registration, request: ncb.ListAvailableModelsRequest, timeout: float
    ) -> ncb.ListAvailableModelsResponse:
        forwarded = ncb.ListAvailableModelsRequest()
        forwarded.CopyFrom(request)
        forwarded.server_config.service_name = registration.entry.name
        answer = self._call(registration.entry.name, self._worker(registration).ListAvailableModels, forwarded, timeout)
        if answer.status not in (ncb.LIST_AVAILABLE_MODELS_STATUS_UNKNOWN, ncb.LIST_AVAILABLE_MODELS_STATUS_SUCCESS):
            raise WorkerError(f"worker {registration.entry.name!r} answered {ncb.ListAvailableModelsStatus.Name(answer.status)}")
        return answer

    # ------------------------------------------------------------------ NetworkCompute
    def NetworkCompute(self, request: ncb.NetworkComputeRequest, context: grpc.ServicerContext) -> ncb.NetworkComputeResponse:
        response = ncb.NetworkComputeResponse()
        with Reply(response, request, self._clock):
            name = request.server_config.service_name
            registration = self._directory.registration(name) if name else None
            if registration is None or registration.entry.type != WORKER_SERVICE_TYPE:
                response.status = ncb.NETWORK_COMPUTE_STATUS_EXTERNAL_SERVICE_NOT_FOUND
                response.header.error.message = f"no {WORKER_SERVICE_TYPE} named {name!r} in the directory"
                return response
            timeout = self._timeout(context)
            try:
                if request.WhichOneof("input") == "input_data_bridge":
                    self._compute_bridge_input(registration, request, response, timeout)
                else:
                    self._compute_deprecated_input(registration, request, response, timeout)
            except WorkerError as exc:
                response.status = ncb.NETWORK_COMPUTE_STATUS_EXTERNAL_SERVER_ERROR
                response.header.error.message = str(exc)
            except ncb_images.ImageCaptureError as exc:
                raise InvalidRequest(str(exc)) from exc
        return response

    def _capture(self, source: ncb.ImageSourceAndService) -> image_pb2.ImageResponse:
        if source.image_service not in _IMAGE_SERVICE_NAMES:
            raise ncb_images.ImageCaptureError(f"image service {source.image_service!r} is not on this robot (use 'image' or '')")
        if source.WhichOneof("request_data") == "image_request":
            image_request = source.image_request
        else:
            image_request = image_pb2.ImageRequest(image_source_name=source.image_source)
        capture = self._images.capture(image_request)
        if capture.status != image_pb2.ImageResponse.STATUS_OK:
            status = image_pb2.ImageResponse.Status.Name(capture.status)
            raise ncb_images.ImageCaptureError(f"image source {image_request.image_source_name!r}: {status}")
        return capture

    def _compute_deprecated_input(
        self, registration: Registration, request: ncb.NetworkComputeRequest, response: ncb.NetworkComputeResponse, timeout: float
    ) -> None:
        """`input_data`: the worker's NetworkCompute, old output fields (proto rows 1-3)."""
        forwarded = ncb.NetworkComputeRequest()
        forwarded.CopyFrom(request)
        data = forwarded.input_data
        capture = None
        rotation = None
        if data.WhichOneof("input") == "image_source_and_service":
            capture = self._capture(data.image_source_and_service)
            angle = ncb_images.rotation_angle_deg(capture.shot, data.rotate_image)
            rotation = ncb_images.rotation_for(capture.shot.image, angle)
            data.image.CopyFrom(ncb_images.rotated_image(capture.shot.image, rotation) if angle else capture.shot.image)
        # The worker gets the image already turned (or, for an image the client sent, as sent:
        # without a transforms snapshot there is nothing to level it by).
        data.rotate_image = ncb.NetworkComputeInputData.ROTATE_IMAGE_NO_ROTATION
        try:
            answer = self._call(registration.entry.name, self._worker(registration).NetworkCompute, forwarded, timeout)
        except grpc.RpcError as exc:  # UNIMPLEMENTED: a worker with only WorkerCompute (row 3)
            raise WorkerError(f"worker {registration.entry.name!r} does not implement NetworkCompute; send input_data_bridge") from exc
        answer.ClearField("header")  # the bridge's own header, not the worker's
        response.MergeFrom(answer)
        if capture is not None and rotation is not None:
            ncb_images.unrotate_objects(list(response.object_in_image), rotation)
            response.image_response.CopyFrom(capture)
            response.image_rotation_angle = math.radians(rotation.angle_deg)
            depth = self._images.depth_metres(capture.source.name)
            for obj in response.object_in_image:
                ncb_images.add_depth(obj, capture, depth)

    def _compute_bridge_input(
        self, registration: Registration, request: ncb.NetworkComputeRequest, response: ncb.NetworkComputeResponse, timeout: float
    ) -> None:
        """`input_data_bridge`: the worker's WorkerCompute, new output fields (rows 4-6)."""
        bridge_input = request.input_data_bridge
        captures = [self._capture(source) for source in bridge_input.image_sources_and_services]
        worker_request = ncb.WorkerComputeRequest()
        worker_request.header.CopyFrom(request.header)
        worker_request.input_data.parameters.CopyFrom(bridge_input.parameters)
        for capture, source in zip(captures, bridge_input.image_sources_and_services):
            image = worker_request.input_data.images.add(image_service=source.image_service or "image")
            image.shot.CopyFrom(capture.shot)
            image.source.CopyFrom(capture.source)
        response.image_responses.extend(worker_request.input_data.images)
        try:
            answer = self._call(registration.entry.name, self._worker(registration).WorkerCompute, worker_request, timeout)
        except grpc.RpcError:  # UNIMPLEMENTED: an older worker with only NetworkCompute (row 5)
            answer = self._compute_with_old_worker(registration, worker_request, captures, timeout)
        response.status = answer.status
        response.other_data.CopyFrom(answer.other_data)
        response.custom_param_error.CopyFrom(answer.custom_param_error)
        for key, output in answer.output_images.items():
            response.output_images[key].CopyFrom(output)
        by_source = {capture.source.name: capture for capture in captures}
        for output in response.output_images.values():
            capture = by_source.get(output.image_response.source.name) or (captures[0] if captures else None)
            if capture is None:
                continue
            depth = self._images.depth_metres(capture.source.name)
            for obj in output.object_in_image:
                ncb_images.add_depth(obj, capture, depth)

    def _compute_with_old_worker(
        self,
        registration: Registration,
        worker_request: ncb.WorkerComputeRequest,
        captures: list[image_pb2.ImageResponse],
        timeout: float,
    ) -> ncb.WorkerComputeResponse:
        """Call a NetworkCompute-only worker with the first image and convert its answer."""
        parameters = worker_request.input_data.parameters
        old = ncb.NetworkComputeRequest()
        old.header.CopyFrom(worker_request.header)
        old.server_config.service_name = registration.entry.name
        old.input_data.model_name = parameters.model_name
        old.input_data.other_data.CopyFrom(parameters.other_data)
        old.input_data.rotate_image = ncb.NetworkComputeInputData.ROTATE_IMAGE_NO_ROTATION
        if captures:
            old.input_data.image.CopyFrom(captures[0].shot.image)
        try:
            answer = self._call(registration.entry.name, self._worker(registration).NetworkCompute, old, timeout)
        except grpc.RpcError as exc:
            raise WorkerError(f"worker {registration.entry.name!r} implements neither WorkerCompute nor NetworkCompute") from exc
        converted = ncb.WorkerComputeResponse(status=answer.status, other_data=answer.other_data)
        for key, output in answer.output_images.items():
            converted.output_images[key].CopyFrom(output)
        if answer.object_in_image and captures:
            output = converted.output_images[captures[0].source.name]
            output.image_response.CopyFrom(captures[0])
            output.object_in_image.extend(answer.object_in_image)
        return converted


def _merge_models(response: ncb.ListAvailableModelsResponse, answer: ncb.ListAvailableModelsResponse) -> None:
    """Add a worker's models, whether it filled `models` or only the pre-3.3 fields."""
    models = list(answer.models.data)
    if not models:
        labels = {entry.model_name: list(entry.available_labels) for entry in answer.labels}
        models = [ncb.ModelData(model_name=name, available_labels=labels.get(name, [])) for name in answer.available_models]
    for model in models:
        response.models.data.append(model)
        response.available_models.append(model.model_name)
        response.labels.add(model_name=model.model_name, available_labels=model.available_labels)
