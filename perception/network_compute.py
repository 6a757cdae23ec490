"""A detector that runs on a Network Compute Bridge worker instead of this computer's CPU.

Spot's way of running bigger models off the payload: a worker (`spot-agent worker` on a GPU box,
or any NCB worker) serves models over gRPC; the agent sends each frame, upright, as JPEG and gets
`object_in_image` world objects back (image-space polygon, `obj<N>_label_<label>` names, the
confidence as a `FloatValue` in `additional_properties`, as the SDK's stock worker writes them).
Two ways to reach it, chosen by the config:
- `address: host:port`: straight to the worker (plain gRPC, as the SDK's
  `identify_object_without_robot.py` does);
- no address: through the robot's `NetworkComputeBridge` service, which forwards to the worker
  registered under `service` (the agent passes its robot connection).

A worker that does not answer in `timeout_s`, answers with an error status or is gone raises
`NetworkComputeError`: the frame gets no result, so the pipeline's perception watchdog stops the
robot exactly as for a stalled camera, and the next frame tries again (that is the retry).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import grpc
import numpy as np
from bosdyn.api import image_pb2, network_compute_bridge_pb2, network_compute_bridge_service_pb2_grpc
from bosdyn.api.network_compute_bridge_pb2 import NetworkComputeRequest, NetworkComputeResponse
from bosdyn.client.exceptions import Error as SdkError
from google.protobuf import wrappers_pb2

from perception.config import NetworkComputeBridgeConfig
from perception.detection import Detection

_SUCCESS = network_compute_bridge_pb2.NETWORK_COMPUTE_STATUS_SUCCESS

# request, timeout (s) -> response; raises on transport errors.
ComputeCall = Callable[[NetworkComputeRequest, float], NetworkComputeResponse]


class NetworkComputeError(RuntimeError):
    """The worker (or the robot's bridge) gave no objects for a frame; the message says why."""


def worker_call(address: str) -> ComputeCall:
    """Calls a worker directly (plain gRPC); one channel per detector, opened lazily by gRPC."""
    stub = network_compute_bridge_service_pb2_grpc.NetworkComputeBridgeWorkerStub(grpc.insecure_channel(address))

    def call(request: NetworkComputeRequest, timeout_s: float) -> NetworkComputeResponse:
        response: NetworkComputeResponse = stub.NetworkCompute(request, timeout=timeout_s)
        return response

    return call


def bridge_call(sdk_robot: object) -> ComputeCall:
    """Calls through the robot's NetworkComputeBridge service (`bosdyn.client.robot.Robot`)."""
    from bosdyn.client.network_compute_bridge_client import NetworkComputeBridgeClient

    client = sdk_robot.ensure_client(NetworkComputeBridgeClient.default_service_name)  # type: ignore[attr-defined]

    def call(request: NetworkComputeRequest, timeout_s: float) -> NetworkComputeResponse:
        response: NetworkComputeResponse = client.network_compute_bridge_command(request, timeout=timeout_s)
        return response

    return call


@dataclass
class NetworkComputeDetector:
    """`Detector` over NCB: frames out as JPEG, detections back in the frame's pixels."""

    config: NetworkComputeBridgeConfig
    call: ComputeCall
    labels: Sequence[str] = ()  # class ids for labels (the COCO list for our own worker)
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        self._class_ids = {label: i for i, label in enumerate(self.labels)}

    @property
    def where(self) -> str:
        via = self.config.address or f"the robot's bridge -> '{self.config.service}'"
        return f"model '{self.config.model}' on {via}"

    def request_for(self, image: np.ndarray) -> NetworkComputeRequest:
        grey = image.ndim == 2
        # OpenCV writes a 3-channel JPEG from BGR; the pixel format says what the pixels are.
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise NetworkComputeError(f"could not encode a {image.shape} frame as JPEG")
        pixel_format = image_pb2.Image.PIXEL_FORMAT_GREYSCALE_U8 if grey else image_pb2.Image.PIXEL_FORMAT_RGB_U8
        picture = image_pb2.Image(
            format=image_pb2.Image.FORMAT_JPEG,
            cols=image.shape[1],
            rows=image.shape[0],
            data=jpeg.tobytes(),
            pixel_format=pixel_format,
        )
        return NetworkComputeRequest(
            input_data=network_compute_bridge_pb2.NetworkComputeInputData(
                image=picture, model_name=self.config.model, min_confidence=self.config.min_confidence
            ),
            server_config=network_compute_bridge_pb2.NetworkComputeServerConfiguration(
                service_name=self.config.service
            ),
        )

    def detect(self, image: np.ndarray) -> list[Detection]:
        request = self.request_for(image)
        try:
            response = self.call(request, self.config.timeout_s)
        except grpc.RpcError as exc:
            code = exc.code().name if hasattr(exc, "code") else "error"
            raise NetworkComputeError(f"{self.where}: {code} ({_details(exc)})") from None
        except SdkError as exc:
            raise NetworkComputeError(f"{self.where}: {type(exc).__name__} ({exc})") from None
        if response.status != _SUCCESS:
            status = network_compute_bridge_pb2.NetworkComputeStatus.Name(response.status)
            raise NetworkComputeError(f"{self.where}: {status}")
        found = (self._detection(obj) for obj in response.object_in_image)
        # Tags are found here, where the frame's intrinsics give them a pose: the worker's copies
        # (our worker's agent_perception lists them too) would only be duplicates without one.
        return [d for d in found if not d.label.startswith("tag:")]

    def _detection(self, obj: object) -> Detection:
        name: str = obj.name  # type: ignore[attr-defined]
        label = name.split("_label_", 1)[1] if "_label_" in name else name
        confidence = wrappers_pb2.FloatValue()
        score = 1.0
        if obj.additional_properties.Unpack(confidence):  # type: ignore[attr-defined]
            score = float(confidence.value)
        return Detection(label=label, class_id=self._class_ids.get(label, -1), score=score, box=object_box(obj))


def object_box(obj: object) -> tuple[float, float, float, float]:
    """The bounding box of a `WorkerObject`'s image polygon (x1, y1, x2, y2; zeros without one)."""
    vertexes = obj.image_properties.coordinates.vertexes  # type: ignore[attr-defined]
    xs = [v.x for v in vertexes] or [0.0]
    ys = [v.y for v in vertexes] or [0.0]
    return float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))


def _details(exc: grpc.RpcError) -> str:
    details = exc.details() if hasattr(exc, "details") else None
    return str(details or exc).splitlines()[0][:200]
