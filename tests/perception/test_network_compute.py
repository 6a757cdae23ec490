"""The Network Compute Bridge detector backend against a real gRPC worker (a scripted one here:
what it answers is set per test, and it keeps every request it got)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import cv2
import grpc
import numpy as np
import pytest
from bosdyn.api import network_compute_bridge_pb2 as ncb
from bosdyn.api import network_compute_bridge_service_pb2_grpc as ncb_grpc
from bosdyn.api import world_object_pb2
from google.protobuf import wrappers_pb2
from pydantic import ValidationError

from perception.config import DetectorConfig, NetworkComputeBridgeConfig
from perception.frame import Frame
from perception.network_compute import NetworkComputeDetector, NetworkComputeError, worker_call
from perception.perceiver import Perceiver


@dataclass
class ScriptedWorker(ncb_grpc.NetworkComputeBridgeWorkerServicer):  # type: ignore[misc]
    """Answers every request with `boxes` (label, score, x1, y1, x2, y2), or `status`."""

    boxes: list[tuple[str, float, float, float, float, float]] = field(default_factory=list)
    status: int = ncb.NETWORK_COMPUTE_STATUS_SUCCESS
    delay_s: float = 0.0
    requests: list[ncb.NetworkComputeRequest] = field(default_factory=list)

    def NetworkCompute(self, request: ncb.NetworkComputeRequest, context: grpc.ServicerContext) -> ncb.NetworkComputeResponse:
        self.requests.append(request)
        time.sleep(self.delay_s)
        response = ncb.NetworkComputeResponse(status=self.status)
        for i, (label, score, x1, y1, x2, y2) in enumerate(self.boxes):
            obj = world_object_pb2.WorldObject(name=f"obj{i}_label_{label}")
            for x, y in ((x1, y1), (x2, y1), (x2, y2), (x1, y2)):
                obj.image_properties.coordinates.vertexes.add(x=x, y=y)
            obj.additional_properties.Pack(wrappers_pb2.FloatValue(value=score))
            response.object_in_image.append(obj)
        return response


@pytest.fixture
def worker() -> Iterator[tuple[ScriptedWorker, str]]:
    servicer = ScriptedWorker()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    ncb_grpc.add_NetworkComputeBridgeWorkerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def remote_config(address: str, **overrides: object) -> DetectorConfig:
    remote = NetworkComputeBridgeConfig(address=address, model="nanodet_g_coco_int8", **overrides)  # type: ignore[arg-type]
    return DetectorConfig(type="network_compute_bridge", network_compute_bridge=remote, fiducials=False)


def test_worker_objects_become_detections_and_the_frame_goes_out_as_jpeg(worker: tuple[ScriptedWorker, str]) -> None:
    servicer, address = worker
    servicer.boxes = [("person", 0.81, 10, 20, 110, 220), ("stop sign", 0.6, 300, 40, 340, 80)]
    detector = NetworkComputeDetector(
        NetworkComputeBridgeConfig(address=address, model="m", min_confidence=0.3), worker_call(address),
        labels=["person", "bicycle", "stop sign"],
    )
    image = np.full((480, 640), 90, np.uint8)
    found = detector.detect(image)
    assert [(d.label, d.class_id, round(d.score, 2), d.box) for d in found] == [
        ("person", 0, 0.81, (10.0, 20.0, 110.0, 220.0)),
        ("stop sign", 2, 0.6, (300.0, 40.0, 340.0, 80.0)),
    ]
    sent = servicer.requests[0]
    assert (sent.input_data.model_name, round(sent.input_data.min_confidence, 2)) == ("m", 0.3)
    picture = sent.input_data.image
    decoded = cv2.imdecode(np.frombuffer(picture.data, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert (picture.rows, picture.cols) == decoded.shape == (480, 640)
    assert abs(int(decoded.mean()) - 90) <= 1


def test_front_camera_frames_go_upright_and_boxes_come_back_in_the_original_pixels(
    worker: tuple[ScriptedWorker, str],
) -> None:
    servicer, address = worker
    # A camera mounted sideways (turned 90 degrees here): the worker sees a 480 x 640 (w x h) frame.
    servicer.boxes = [("person", 0.9, 100, 200, 200, 600)]
    perceiver = Perceiver(remote_config(address))
    frame = Frame("frontleft_fisheye_image", np.zeros((480, 640), np.uint8), 0.0, 0.0)
    found = perceiver.detect_objects(frame, rotation_deg=90.0)
    picture = servicer.requests[0].input_data.image
    assert (picture.cols, picture.rows) == (480, 640)
    # The box turned back by the camera's rotation: still 100 x 400 px, now 400 wide in the raw frame.
    (box,) = [d.box for d in found]
    assert round(box[2] - box[0]) == 400 and round(box[3] - box[1]) == 100


def test_error_status_slow_worker_and_no_worker_are_network_compute_errors(worker: tuple[ScriptedWorker, str]) -> None:
    servicer, address = worker
    detector = NetworkComputeDetector(NetworkComputeBridgeConfig(address=address, timeout_s=0.3), worker_call(address))
    image = np.zeros((48, 64), np.uint8)
    servicer.status = ncb.NETWORK_COMPUTE_STATUS_ANALYSIS_FAILED
    with pytest.raises(NetworkComputeError, match="NETWORK_COMPUTE_STATUS_ANALYSIS_FAILED"):
        detector.detect(image)
    servicer.status, servicer.delay_s = ncb.NETWORK_COMPUTE_STATUS_SUCCESS, 1.0
    started = time.monotonic()
    with pytest.raises(NetworkComputeError, match="DEADLINE_EXCEEDED"):
        detector.detect(image)
    assert time.monotonic() - started < 0.9
    gone = NetworkComputeDetector(NetworkComputeBridgeConfig(address="127.0.0.1:1", timeout_s=0.5), worker_call("127.0.0.1:1"))
    with pytest.raises(NetworkComputeError, match="UNAVAILABLE|DEADLINE_EXCEEDED"):
        gone.detect(image)


def test_remote_detector_needs_an_address_or_the_robots_bridge() -> None:
    config = DetectorConfig(type="network_compute_bridge")
    with pytest.raises(ValueError, match="network_compute_bridge.address"):
        Perceiver(config)
    with pytest.raises(ValidationError, match="host:port"):
        NetworkComputeBridgeConfig(address="worker-without-port")
