"""A Network Compute Bridge worker for the sim's contract tests: a real insecure gRPC server (as
workers are) with two small models, so the bridge is tested without `spot-agent worker`.

- `brightest`: one box, 32 x 32 px, around the brightest spot of the image it was sent (after a
  blur), label `bright`. Its answer is checkable against any frame, which makes it the probe for
  the bridge's rotation and polygon mapping.
- `person`: the project's own TFLite detector on the image as sent (no rotation of its own), so
  a person is found only in a frame that reaches it upright.

Objects are written as the SDK's `tensorflow_server.py` writes them (`obj<N>_label_<label>`,
4-vertex polygons, the confidence as a FloatValue). Every request is recorded (`requests`, with
the decoded image) and `delay_s` makes the worker slow. `worker_compute=False` serves only the
deprecated NetworkCompute, like the stock example server.
"""

from __future__ import annotations

import time
from concurrent import futures
from dataclasses import dataclass, field
from functools import cached_property

import cv2
import grpc
import numpy as np
from bosdyn.api import header_pb2, image_pb2, network_compute_bridge_service_pb2_grpc
from bosdyn.api import network_compute_bridge_pb2 as ncb
from google.protobuf import wrappers_pb2

from perception.detector import TFLiteDetector

MODELS = {"brightest": ["bright"], "person": ["person"]}
BOX_PX = 32


@dataclass
class Received:
    """What one compute request brought to the worker."""

    rpc: str  # "NetworkCompute" or "WorkerCompute"
    model: str
    image: image_pb2.Image
    pixels: np.ndarray
    rotate_image: int = 0


def decode(image: image_pb2.Image) -> np.ndarray:
    if image.format == image_pb2.Image.FORMAT_JPEG:
        pixels = cv2.imdecode(np.frombuffer(image.data, np.uint8), cv2.IMREAD_UNCHANGED)
        if pixels is None:
            raise ValueError("JPEG does not decode")
        return pixels
    channels = 3 if image.pixel_format == image_pb2.Image.PIXEL_FORMAT_RGB_U8 else 1
    shape = (image.rows, image.cols, channels) if channels == 3 else (image.rows, image.cols)
    return np.frombuffer(image.data, np.uint8).reshape(shape)


def brightest_box(pixels: np.ndarray) -> tuple[float, float, float, float]:
    grey = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
    blurred = cv2.blur(grey.astype(np.float32), (BOX_PX, BOX_PX))
    y, x = np.unravel_index(int(np.argmax(blurred)), blurred.shape)
    half = BOX_PX / 2
    return float(x - half), float(y - half), float(x + half), float(y + half)


@dataclass
class FakeWorker(network_compute_bridge_service_pb2_grpc.NetworkComputeBridgeWorkerServicer):
    worker_compute: bool = True
    delay_s: float = 0.0
    requests: list[Received] = field(default_factory=list)
    list_calls: int = 0

    @cached_property
    def _detector(self) -> TFLiteDetector:
        return TFLiteDetector(score_threshold=0.3)

    def _objects(self, model: str, pixels: np.ndarray, min_confidence: float) -> list[tuple[str, float, tuple[float, ...]]]:
        if model == "brightest":
            return [("bright", 1.0, brightest_box(pixels))]
        rgb = pixels if pixels.ndim == 3 else cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
        return [(d.label, d.score, d.box) for d in self._detector.detect(rgb) if d.label == "person" and d.score >= min_confidence]

    def _fill(self, objects: list, out: object) -> None:  # type: ignore[type-arg]
        for n, (label, score, (x1, y1, x2, y2)) in enumerate(objects, start=1):
            obj = out.add()  # type: ignore[attr-defined]
            obj.name = f"obj{n}_label_{label}"
            for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2)):
                obj.image_properties.coordinates.vertexes.add(x=x, y=y)
            obj.additional_properties.Pack(wrappers_pb2.FloatValue(value=score))

    def ListAvailableModels(self, request: ncb.ListAvailableModelsRequest, context: grpc.ServicerContext) -> ncb.ListAvailableModelsResponse:
        self.list_calls += 1
        response = ncb.ListAvailableModelsResponse(status=ncb.LIST_AVAILABLE_MODELS_STATUS_SUCCESS)
        for name, labels in MODELS.items():
            response.models.data.add(model_name=name, available_labels=labels)
        return response

    def NetworkCompute(self, request: ncb.NetworkComputeRequest, context: grpc.ServicerContext) -> ncb.NetworkComputeResponse:
        time.sleep(self.delay_s)
        data = request.input_data
        response = ncb.NetworkComputeResponse()
        if data.model_name not in MODELS:
            response.header.error.code = header_pb2.CommonError.CODE_INVALID_REQUEST
            response.header.error.message = f"Cannot find model {data.model_name!r}"
            return response
        pixels = decode(data.image)
        self.requests.append(Received("NetworkCompute", data.model_name, data.image, pixels, data.rotate_image))
        self._fill(self._objects(data.model_name, pixels, data.min_confidence), response.object_in_image)
        response.status = ncb.NETWORK_COMPUTE_STATUS_SUCCESS
        return response

    def WorkerCompute(self, request: ncb.WorkerComputeRequest, context: grpc.ServicerContext) -> ncb.WorkerComputeResponse:
        if not self.worker_compute:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "Method not implemented!")
        time.sleep(self.delay_s)
        model = request.input_data.parameters.model_name
        response = ncb.WorkerComputeResponse(status=ncb.NETWORK_COMPUTE_STATUS_SUCCESS)
        for capture in request.input_data.images:
            pixels = decode(capture.shot.image)
            self.requests.append(Received("WorkerCompute", model, capture.shot.image, pixels))
            output = response.output_images[capture.source.name]
            output.image_response.shot.CopyFrom(capture.shot)
            output.image_response.source.CopyFrom(capture.source)
            self._fill(self._objects(model, pixels, 0.3), output.object_in_image)
        return response


class WorkerServer:
    """`FakeWorker` served on 127.0.0.1 (insecure gRPC, an ephemeral port)."""

    def __init__(self, worker: FakeWorker) -> None:
        self.worker = worker
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="fake-ncb"))
        network_compute_bridge_service_pb2_grpc.add_NetworkComputeBridgeWorkerServicer_to_server(worker, self._server)
        self.host = "127.0.0.1"
        self.port = self._server.add_insecure_port(f"{self.host}:0")
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=0).wait(timeout=5.0)
