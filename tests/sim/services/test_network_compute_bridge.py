"""The sim's Network Compute Bridge through the SDK's own `NetworkComputeBridgeClient`, unmodified,
forwarding to a real worker process-local gRPC server (`support/ncb_worker.py`) registered in the
sim's directory as a payload would register one."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from bosdyn.api import image_pb2
from bosdyn.api import network_compute_bridge_pb2 as ncb
from bosdyn.client.directory import DirectoryClient
from bosdyn.client.directory_registration import DirectoryRegistrationClient
from bosdyn.client.exceptions import TimedOutError
from bosdyn.client.frame_helpers import ODOM_FRAME_NAME, get_a_tform_b
from bosdyn.client.network_compute_bridge_client import (
    ExternalServerError,
    ExternalServiceNotFoundError,
    NetworkComputeBridgeClient,
)
from bosdyn.client.robot import Robot
from google.protobuf import wrappers_pb2
from support.ncb_worker import FakeWorker, WorkerServer, brightest_box

from perception.rotation import upright_rotation
from sim.scene import parse_scenario
from sim.server import SimServer
from sim.testing import running_sim, sdk_robot

WORKER_TYPE = "bosdyn.api.NetworkComputeBridgeWorker"
SOURCE = "frontleft_fisheye_image"
ALIGN_HORIZONTAL = ncb.NetworkComputeInputData.ROTATE_IMAGE_ALIGN_HORIZONTAL
NO_ROTATION = ncb.NetworkComputeInputData.ROTATE_IMAGE_NO_ROTATION
PERSON_AT = (3.5, 0.0)  # odom metres, facing the robot: whole in frontleft's view of a sitting robot


@pytest.fixture
def person_sim() -> Iterator[SimServer]:
    scenario = parse_scenario({"objects": [{"type": "person", "pose": {"x": PERSON_AT[0], "y": PERSON_AT[1], "yaw_deg": 180.0}}]}, "test")
    with running_sim(scenario) as server:
        yield server


@pytest.fixture
def robot(person_sim: SimServer) -> Iterator[Robot]:
    with sdk_robot(person_sim, "ncb-test") as robot:
        yield robot


@pytest.fixture
def worker(robot: Robot) -> Iterator[WorkerServer]:
    """A fake worker registered as `fake-worker` at its real host and port."""
    server = WorkerServer(FakeWorker())
    robot.ensure_client(DirectoryRegistrationClient.default_service_name).register(
        "fake-worker", WORKER_TYPE, "fake-worker", server.host, server.port
    )
    try:
        yield server
    finally:
        server.stop()


def bridge(robot: Robot) -> NetworkComputeBridgeClient:
    return robot.ensure_client(NetworkComputeBridgeClient.default_service_name)


def compute_request(model: str, rotate: int, service: str = "fake-worker") -> ncb.NetworkComputeRequest:
    source = ncb.ImageSourceAndService(image_source=SOURCE, image_service="")
    data = ncb.NetworkComputeInputData(image_source_and_service=source, model_name=model, min_confidence=0.5)
    data.rotate_image = rotate
    return ncb.NetworkComputeRequest(input_data=data, server_config=ncb.NetworkComputeServerConfiguration(service_name=service))


def decode(image: image_pb2.Image) -> np.ndarray:
    if image.format == image_pb2.Image.FORMAT_RAW:
        return np.frombuffer(image.data, np.uint8).reshape(image.rows, image.cols)
    return cv2.imdecode(np.frombuffer(image.data, np.uint8), -1)


def identify_object_rotation(img: np.ndarray, rotation_rad: float) -> tuple[np.ndarray, np.ndarray]:
    """The affine `identify_object.py` builds to draw the polygons on the returned image (the same
    arithmetic as its `rotate_image_nocrop`, written here: tests cannot read the SDK examples)."""
    h, w = img.shape[:2]
    rotmat = cv2.getRotationMatrix2D((w / 2, h / 2), math.degrees(rotation_rad), 1.0)
    cos_d, sin_d = abs(rotmat[0][0]), abs(rotmat[0][1])
    new_w, new_h = int(h * sin_d + w * cos_d), int(h * cos_d + w * sin_d)
    rotmat[0][2] += new_w / 2.0 - w / 2
    rotmat[1][2] += new_h / 2.0 - h / 2
    return cv2.warpAffine(img, rotmat, (new_w, new_h)), rotmat


def test_identify_object_flow_finds_the_person_ahead(robot: Robot, worker: WorkerServer) -> None:
    """What the SDK's `python/examples/network_compute_bridge/identify_object.py` does, call for
    call: `--model-list` (directory list filtered by worker type, ListAvailableModels per
    service), then `--service fake-worker --model person --image-source frontleft_fisheye_image`
    (deprecated input_data, ROTATE_IMAGE_ALIGN_HORIZONTAL, min_confidence 0.5), then its drawing:
    decode `image_response`, rotate by `image_rotation_angle`, unpack each confidence."""
    services = [s.name for s in robot.ensure_client(DirectoryClient.default_service_name).list() if s.type == WORKER_TYPE]
    assert services == ["fake-worker"]
    listed = bridge(robot).list_available_models_command(
        ncb.ListAvailableModelsRequest(server_config=ncb.NetworkComputeServerConfiguration(service_name="fake-worker"))
    )
    assert not listed.header.error.message
    assert [m.model_name for m in listed.models.data] == ["brightest", "person"]

    response = bridge(robot).network_compute_bridge_command(compute_request("person", ALIGN_HORIZONTAL))

    assert len(response.object_in_image) >= 1
    # The worker got a real rendered frame, turned upright (-78 deg for frontleft): the person
    # model finds people only in upright frames.
    received = worker.worker.requests[-1]
    expected = upright_rotation(-78.0, 640, 480)
    assert (received.image.cols, received.image.rows) == expected.size
    assert math.degrees(response.image_rotation_angle) == pytest.approx(-78.0, abs=0.01)

    img = decode(response.image_response.shot.image)
    assert img.shape == (480, 640) and response.image_response.source.name == SOURCE
    drawn, rotmat = identify_object_rotation(img, response.image_rotation_angle)
    for obj in response.object_in_image:
        assert obj.name.startswith("obj") and obj.name.endswith("_label_person")
        confidence = wrappers_pb2.FloatValue()
        assert obj.additional_properties.Unpack(confidence) and confidence.value >= 0.5
        points = cv2.transform(np.array([[[v.x, v.y] for v in obj.image_properties.coordinates.vertexes]]), rotmat)[0]
        assert (points >= -2).all() and (points[:, 0] <= drawn.shape[1] + 2).all() and (points[:, 1] <= drawn.shape[0] + 2).all()
        # Depth added by the bridge: the object's frame sits on the person, 3.5 m ahead.
        odom_tform_obj = get_a_tform_b(obj.transforms_snapshot, ODOM_FRAME_NAME, obj.image_properties.frame_name_image_coordinates)
        assert odom_tform_obj is not None
        assert PERSON_AT[0] - 0.6 < odom_tform_obj.x < PERSON_AT[0] + 0.2 and abs(odom_tform_obj.y - PERSON_AT[1]) < 0.5 and 0.0 < odom_tform_obj.z < 1.8
        assert obj.image_properties.camera_source == SOURCE


def test_polygons_come_back_in_the_captured_images_pixels(robot: Robot, worker: WorkerServer) -> None:
    response = bridge(robot).network_compute_bridge_command(compute_request("brightest", ALIGN_HORIZONTAL))
    received = worker.worker.requests[-1]
    raw = decode(response.image_response.shot.image)
    # The worker saw exactly the returned frame, rotated (JPEG noise aside).
    rotation = upright_rotation(-78.0, 640, 480)
    difference = np.abs(rotation.apply(raw).astype(np.int16) - received.pixels.astype(np.int16))
    assert float(np.median(difference)) <= 2.0
    # The worker's box, in the rotated image, is where identify_object's drawing puts the polygon.
    (obj,) = response.object_in_image
    _, rotmat = identify_object_rotation(raw, response.image_rotation_angle)
    drawn = cv2.transform(np.array([[[v.x, v.y] for v in obj.image_properties.coordinates.vertexes]]), rotmat)[0]
    x1, y1, x2, y2 = brightest_box(received.pixels)
    np.testing.assert_allclose(drawn, [[x1, y1], [x2, y1], [x2, y2], [x1, y2]], atol=1.5)


def test_no_rotation_sends_the_raw_frame(robot: Robot, worker: WorkerServer) -> None:
    response = bridge(robot).network_compute_bridge_command(compute_request("brightest", NO_ROTATION))
    received = worker.worker.requests[-1]
    assert received.pixels.shape == (480, 640)
    assert response.image_rotation_angle == 0.0
    assert received.image.data == response.image_response.shot.image.data
    (obj,) = response.object_in_image
    x1, y1, _, _ = brightest_box(received.pixels)
    assert (obj.image_properties.coordinates.vertexes[0].x, obj.image_properties.coordinates.vertexes[0].y) == (x1, y1)


def test_an_image_sent_by_the_client_goes_to_the_worker_as_sent(robot: Robot, worker: WorkerServer) -> None:
    """identify_object.py --input-image: an RGB JPEG, ALIGN_HORIZONTAL asked but nothing to level by."""
    picture = np.zeros((120, 160, 3), np.uint8)
    picture[74:106, 14:46] = 255
    jpeg = cv2.imencode(".jpg", picture)[1].tobytes()
    image = image_pb2.Image(format=image_pb2.Image.FORMAT_JPEG, cols=160, rows=120, data=jpeg,
                            pixel_format=image_pb2.Image.PIXEL_FORMAT_RGB_U8)
    data = ncb.NetworkComputeInputData(image=image, model_name="brightest", min_confidence=0.5, rotate_image=ALIGN_HORIZONTAL)
    request = ncb.NetworkComputeRequest(input_data=data, server_config=ncb.NetworkComputeServerConfiguration(service_name="fake-worker"))
    response = bridge(robot).network_compute_bridge_command(request)
    assert worker.worker.requests[-1].image.data == jpeg
    assert not response.HasField("image_response") and response.image_rotation_angle == 0.0
    (obj,) = response.object_in_image
    vertex = obj.image_properties.coordinates.vertexes[0]
    assert abs(vertex.x - 14) <= 2 and abs(vertex.y - 74) <= 2  # the white square's corner


@pytest.mark.parametrize("worker_compute", [True, False], ids=["WorkerCompute", "NetworkCompute-only worker"])
def test_bridge_input_reaches_the_worker_and_returns_output_images(
    robot: Robot, worker: WorkerServer, worker_compute: bool
) -> None:
    """The SDK 5 request shape (input_data_bridge); a worker without WorkerCompute is called
    through NetworkCompute and its answer converted (network_compute_bridge.proto, rows 4-6)."""
    worker.worker.worker_compute = worker_compute
    bridge_input = ncb.NetworkComputeInputDataBridge(
        image_sources_and_services=[ncb.ImageSourceAndService(image_source=SOURCE)],
        parameters=ncb.ComputeParameters(model_name="brightest"),
    )
    request = ncb.NetworkComputeRequest(input_data_bridge=bridge_input,
                                        server_config=ncb.NetworkComputeServerConfiguration(service_name="fake-worker"))
    response = bridge(robot).network_compute_bridge_command(request)
    assert response.status == ncb.NETWORK_COMPUTE_STATUS_SUCCESS
    assert [r.source.name for r in response.image_responses] == [SOURCE]
    received = worker.worker.requests[-1]
    assert received.rpc == ("WorkerCompute" if worker_compute else "NetworkCompute")
    assert received.pixels.shape == (480, 640)  # no rotation in the new API
    output = response.output_images[SOURCE]
    (obj,) = output.object_in_image
    assert obj.name == "obj1_label_bright" and obj.image_properties.camera_source == SOURCE
    assert obj.acquisition_time == response.image_responses[0].shot.acquisition_time


def test_models_of_every_registered_worker_are_listed(robot: Robot, worker: WorkerServer) -> None:
    second = WorkerServer(FakeWorker())
    try:
        robot.ensure_client(DirectoryRegistrationClient.default_service_name).register(
            "second-worker", WORKER_TYPE, "second-worker", second.host, second.port
        )
        merged = bridge(robot).list_available_models("")
        assert sorted(m.model_name for m in merged.models.data) == ["brightest", "brightest", "person", "person"]
        assert worker.worker.list_calls == 1 and second.worker.list_calls == 1
    finally:
        second.stop()


def test_unknown_service_is_external_service_not_found(robot: Robot, worker: WorkerServer) -> None:
    robot.ensure_client(DirectoryRegistrationClient.default_service_name).register(
        "not-a-worker", "my.OtherService", "other", worker.host, worker.port
    )
    for name in ("nobody", "not-a-worker"):
        with pytest.raises(ExternalServiceNotFoundError):
            bridge(robot).network_compute_bridge_command(compute_request("person", ALIGN_HORIZONTAL, service=name))
        with pytest.raises(ExternalServiceNotFoundError):
            bridge(robot).list_available_models(name)
    assert worker.worker.requests == []


def test_unreachable_or_failing_worker_is_external_server_error(robot: Robot, worker: WorkerServer) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    robot.ensure_client(DirectoryRegistrationClient.default_service_name).register(
        "gone-worker", WORKER_TYPE, "gone-worker", "127.0.0.1", dead_port
    )
    with pytest.raises(ExternalServerError):
        bridge(robot).network_compute_bridge_command(compute_request("person", ALIGN_HORIZONTAL, service="gone-worker"), timeout=5)
    with pytest.raises(ExternalServerError):
        bridge(robot).list_available_models("gone-worker", timeout=5)
    with pytest.raises(ExternalServerError) as failed:  # the worker's own error, passed on
        bridge(robot).network_compute_bridge_command(compute_request("no-such-model", ALIGN_HORIZONTAL))
    assert "Cannot find model" in failed.value.response.header.error.message


def test_slow_worker_is_a_server_error_before_the_clients_deadline(robot: Robot, worker: WorkerServer) -> None:
    worker.worker.delay_s = 3.0
    started = time.monotonic()
    with pytest.raises(ExternalServerError) as slow:  # a status the client can act on, not TimedOutError
        bridge(robot).network_compute_bridge_command(compute_request("brightest", ALIGN_HORIZONTAL), timeout=1.5)
    assert not isinstance(slow.value, TimedOutError)
    assert "did not answer" in slow.value.response.header.error.message
    assert time.monotonic() - started < 3.0
