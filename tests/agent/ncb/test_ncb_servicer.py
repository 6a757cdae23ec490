"""The NCB worker's service over real gRPC (in this process): inputs (JPEG, RAW grey and RGB),
rotation hints, min_confidence, fiducials, and the statuses clients get for bad requests."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import grpc
import numpy as np
import pytest
from bosdyn.api import (
    header_pb2,
    image_pb2,
    network_compute_bridge_pb2,
    network_compute_bridge_service_pb2_grpc,
)

from agent.ncb.server import BindError, WorkerServer, start_worker_server
from perception.config import DetectorConfig
from tests.support.ncb import (
    CROWD_PHOTO,
    GREY_PHOTO,
    best_iou,
    compute_request,
    confidence,
    jpeg_image,
    labelled_people,
    polygon_box,
    raw_image,
)

ncb = network_compute_bridge_pb2
Rotate = ncb.NetworkComputeInputData.RotateImage


@pytest.fixture(scope="module")
def server() -> Iterator[WorkerServer]:
    running = start_worker_server(DetectorConfig(), "127.0.0.1", 0, pool_size=1, max_pending=4)
    try:
        yield running
    finally:
        running.stop(0)


@pytest.fixture(scope="module")
def stub(server: WorkerServer) -> Iterator[network_compute_bridge_service_pb2_grpc.NetworkComputeBridgeWorkerStub]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield network_compute_bridge_service_pb2_grpc.NetworkComputeBridgeWorkerStub(channel)


def _people(response: object) -> list[object]:
    return [o for o in response.object_in_image if o.name.endswith("_label_person")]  # type: ignore[attr-defined]


def test_models_listed_with_labels_in_new_and_deprecated_fields(stub: object) -> None:
    response = stub.ListAvailableModels(ncb.ListAvailableModelsRequest())  # type: ignore[attr-defined]
    assert response.header.error.code == header_pb2.CommonError.CODE_OK
    assert response.status == ncb.LIST_AVAILABLE_MODELS_STATUS_SUCCESS
    names = [m.model_name for m in response.models.data]
    assert names == ["agent_perception", "nanodet_g_coco_int8", "movenet_multipose_160_f16", "apriltag_36h11"]
    assert list(response.available_models) == names
    labels = {m.model_name: list(m.available_labels) for m in response.models.data}
    assert {m.model_name: list(m.available_labels) for m in response.labels} == labels
    assert {"person", "stop sign", "tag:0", "tag:586"} <= set(labels["agent_perception"])
    assert "stop sign" in labels["nanodet_g_coco_int8"] and labels["movenet_multipose_160_f16"] == ["person"]
    assert labels["apriltag_36h11"][:2] == ["tag:0", "tag:1"]


def test_raw_grey_and_raw_rgb_find_the_labelled_person_as_jpeg_does(stub: object) -> None:
    grey = cv2.imread(str(GREY_PHOTO), cv2.IMREAD_GRAYSCALE)
    truth = labelled_people(GREY_PHOTO)
    rgb = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    for image in (raw_image(grey), raw_image(rgb), jpeg_image(grey, image_pb2.Image.PIXEL_FORMAT_GREYSCALE_U8)):
        response = stub.NetworkCompute(compute_request(image, "agent_perception", 0.5))  # type: ignore[attr-defined]
        assert response.status == ncb.NETWORK_COMPUTE_STATUS_SUCCESS, response.header.error.message
        people = _people(response)
        assert [p.name for p in people] == ["obj1_label_person"]
        assert confidence(people[0]) >= 0.5
        assert best_iou(polygon_box(people[0]), truth) >= 0.5
        # The annotated image a tablet draws: the input's size, with the polygon's pixels.
        annotated = response.output_images["detections"]
        assert [o.name for o in annotated.object_in_image] == [o.name for o in response.object_in_image]
        shot = annotated.image_response.shot.image
        decoded = cv2.imdecode(np.frombuffer(shot.data, np.uint8), cv2.IMREAD_COLOR)
        assert decoded.shape[:2] == grey.shape == (shot.rows, shot.cols)
        assert np.abs(decoded.astype(int) - decoded[..., :1]).max() > 60  # coloured boxes on grey


def test_min_confidence_filters_exactly_the_lower_scores(stub: object) -> None:
    crowd = jpeg_image(cv2.imread(str(CROWD_PHOTO)))
    everything = stub.NetworkCompute(compute_request(crowd, "nanodet_g_coco_int8", 0.0))  # type: ignore[attr-defined]
    scores = [confidence(o) for o in everything.object_in_image]
    assert scores == sorted(scores, reverse=True) and len(scores) >= 4
    threshold = (scores[1] + scores[-1]) / 2  # some kept, some dropped
    kept = stub.NetworkCompute(compute_request(crowd, "nanodet_g_coco_int8", threshold))  # type: ignore[attr-defined]
    assert [confidence(o) for o in kept.object_in_image] == [s for s in scores if s >= threshold]
    assert [o.name.split("_label_")[0] for o in kept.object_in_image] == [
        f"obj{n}" for n in range(1, len(kept.object_in_image) + 1)]
    assert 0 < len(kept.object_in_image) < len(scores)


def test_worker_compute_turns_a_camera_image_upright_by_its_camera(stub: object) -> None:
    """`right_fisheye_image` is mounted upside down: its frames are turned 180 degrees (config)
    before detecting, and the polygon comes back in the frame's own (upside-down) pixels."""
    grey = cv2.imread(str(GREY_PHOTO), cv2.IMREAD_GRAYSCALE)
    flipped = cv2.rotate(grey, cv2.ROTATE_180)
    h, w = grey.shape
    truth = tuple((w - x2, h - y2, w - x1, h - y1) for x1, y1, x2, y2 in labelled_people(GREY_PHOTO))
    capture = image_pb2.ImageCaptureAndSource(source=image_pb2.ImageSource(name="right_fisheye_image"))
    capture.shot.image.CopyFrom(raw_image(flipped))
    request = ncb.WorkerComputeRequest()
    request.input_data.images.append(capture)
    request.input_data.parameters.model_name = "agent_perception"
    request.input_data.parameters.custom_params.values["min_confidence"].double_value.value = 0.6
    response = stub.WorkerCompute(request)  # type: ignore[attr-defined]
    assert response.status == ncb.NETWORK_COMPUTE_STATUS_SUCCESS, response.header.error.message
    # Not turned, the same frame gives a 0.48 person, a 0.40 horse and a 0.38 person (IoU 0.6).
    objects = response.output_images["detections"].object_in_image
    assert [o.name for o in objects] == ["obj1_label_person"]
    assert confidence(objects[0]) >= 0.7 and best_iou(polygon_box(objects[0]), truth) >= 0.7
    people = objects
    assert people[0].image_properties.camera_source == "right_fisheye_image"


def test_a_gravity_rotation_request_without_a_camera_is_a_rotation_error(stub: object) -> None:
    grey = cv2.imread(str(GREY_PHOTO), cv2.IMREAD_GRAYSCALE)
    request = compute_request(raw_image(grey), "agent_perception", rotate_image=Rotate.ROTATE_IMAGE_ALIGN_HORIZONTAL)
    response = stub.NetworkCompute(request)  # type: ignore[attr-defined]
    assert response.status == ncb.NETWORK_COMPUTE_STATUS_ROTATION_ERROR
    assert "needs the camera" in response.header.error.message
    plain = compute_request(raw_image(grey), "agent_perception", rotate_image=Rotate.ROTATE_IMAGE_NO_ROTATION)
    assert stub.NetworkCompute(plain).status == ncb.NETWORK_COMPUTE_STATUS_SUCCESS  # type: ignore[attr-defined]


def test_fiducial_model_returns_tags_with_their_ids(stub: object) -> None:
    frame = np.full((480, 640), 200, np.uint8)
    tag = cv2.aruco.generateImageMarker(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11), 7, 120)
    frame[150:270, 250:370] = tag
    response = stub.NetworkCompute(compute_request(raw_image(frame), "apriltag_36h11"))  # type: ignore[attr-defined]
    assert [o.name for o in response.object_in_image] == ["obj1_label_tag:7"]
    obj = response.object_in_image[0]
    assert obj.apriltag_properties.tag_id == 7
    x1, y1, x2, y2 = polygon_box(obj)
    assert abs(x1 - 250) < 20 and abs(y1 - 150) < 20 and abs(x2 - 370) < 20 and abs(y2 - 270) < 20


@pytest.mark.parametrize(
    ("image", "model", "says"),
    [
        (raw_image(np.zeros((48, 64), np.uint8)), "coco_inference", 'Cannot find model "coco_inference"'),
        (image_pb2.Image(format=image_pb2.Image.FORMAT_JPEG, data=b"\xff\xd8garbage" * 50), "agent_perception",
         "image not decodable"),
        (image_pb2.Image(format=image_pb2.Image.FORMAT_JPEG, data=b"not an image at all"), "agent_perception",
         "image not decodable"),
        (image_pb2.Image(format=image_pb2.Image.FORMAT_RAW, rows=480, cols=640, data=b"\x00" * 1000,
                         pixel_format=image_pb2.Image.PIXEL_FORMAT_GREYSCALE_U8), "agent_perception",
         "raw_size_mismatch"),
    ],
)
def test_bad_requests_get_invalid_request_and_the_worker_keeps_serving(
    stub: object, image: image_pb2.Image, model: str, says: str
) -> None:
    response = stub.NetworkCompute(compute_request(image, model))  # type: ignore[attr-defined]
    assert response.header.error.code == header_pb2.CommonError.CODE_INVALID_REQUEST
    assert response.status == ncb.NETWORK_COMPUTE_STATUS_ANALYSIS_FAILED
    assert says in response.header.error.message
    ok = stub.NetworkCompute(compute_request(raw_image(np.zeros((48, 64), np.uint8)), "agent_perception"))  # type: ignore[attr-defined]
    assert ok.status == ncb.NETWORK_COMPUTE_STATUS_SUCCESS


def test_stats_count_answers_and_failures_per_model(server: WorkerServer, stub: object) -> None:
    before = server.worker.stats.as_dict()["models"].get("movenet_multipose_160_f16", {}).get("answered", 0)
    grey = cv2.imread(str(GREY_PHOTO), cv2.IMREAD_GRAYSCALE)
    for _ in range(3):
        stub.NetworkCompute(compute_request(raw_image(grey), "movenet_multipose_160_f16"))  # type: ignore[attr-defined]
    stub.NetworkCompute(compute_request(raw_image(grey), "nope"))  # type: ignore[attr-defined]
    stats = server.worker.stats.as_dict()["models"]
    assert stats["movenet_multipose_160_f16"]["answered"] == before + 3
    assert stats["movenet_multipose_160_f16"]["latency_ms"]["p50"] > 0
    assert stats["<unknown model>"]["failed"]["analysis_failed"] >= 1


def test_a_second_worker_on_the_same_port_fails_instead_of_sharing_it(server: WorkerServer) -> None:
    with pytest.raises(BindError, match=f"cannot serve on 127.0.0.1:{server.port}"):
        start_worker_server(DetectorConfig(fiducials=False, person_model=None), "127.0.0.1", server.port,
                            pool_size=1, max_pending=1)


def test_answers_do_not_echo_the_image_back(stub: object) -> None:
    grey = cv2.imread(str(GREY_PHOTO), cv2.IMREAD_GRAYSCALE)
    request = compute_request(raw_image(grey), "agent_perception")
    request.header.client_name = "me"
    response = stub.NetworkCompute(request)  # type: ignore[attr-defined]
    assert response.header.request_header.client_name == "me"
    assert response.header.ByteSize() < 1000 < grey.size
    listed = stub.ListAvailableModels(ncb.ListAvailableModelsRequest())  # type: ignore[attr-defined]
    assert listed.header.error.code == header_pb2.CommonError.CODE_OK
