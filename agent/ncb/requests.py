"""Network Compute Bridge requests in, perception results out.

In: the image of a `NetworkComputeRequest` (`input_data.image`, the form the stock
`identify_object_without_robot.py` sends) or each image of a `WorkerComputeRequest` (what a
robot's bridge sends, with the camera's `ImageSource`), decoded by the agent's own decoder
(`perception.decode`: JPEG, RAW grey / RGB / RGBA, bounded size, truncation caught).

Rotation: perception turns a frame upright before detecting, by the camera's angle in the
config (`detector.camera_rotation_deg`, the angles the SDK's examples use), exactly as the agent
does. A `WorkerCompute` image names its camera, so it is turned by that camera's angle. A
`NetworkCompute` image names none: its `rotate_image` asks the bridge for a gravity alignment
that needs the camera, so a request asking for one is refused with
`NETWORK_COMPUTE_STATUS_ROTATION_ERROR` (the proto deprecates the field since 3.3: clients turn
the image before sending); without it the image is taken as it comes.

Out: what the SDK's stock servers write, which clients and the tablet read: one `WorldObject`
per detection named `obj<N>_label_<label>` (N from 1, best first), an image-space polygon in the
input image's pixels, the confidence as a `google.protobuf.FloatValue` in
`additional_properties`; tags also with `apriltag_properties.tag_id`; and an annotated JPEG of
the input image (person skeletons are drawn on it: `image_properties` holds a polygon or
keypoints, not both, and clients read the polygon).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
from bosdyn.api import header_pb2, image_pb2, network_compute_bridge_pb2, world_object_pb2
from google.protobuf import wrappers_pb2

from agent.ncb.models import Found
from perception.annotate import annotate
from perception.config import DetectorConfig
from perception.decode import FrameDecodeError, decode_image_response
from perception.frame import Frame

_ncb = network_compute_bridge_pb2
_Rotate = _ncb.NetworkComputeInputData.RotateImage
ALIGN_REQUESTS = (_Rotate.ROTATE_IMAGE_ALIGN_HORIZONTAL, _Rotate.ROTATE_IMAGE_ALIGN_WITH_BODY)
ANNOTATED_JPEG_QUALITY = 85
MIN_CONFIDENCE_PARAM = "min_confidence"  # WorkerCompute: a custom param (no field for it there)


class RequestError(Exception):
    """A request the worker cannot serve: the NCB status and header code it is answered with."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def bad_request(message: str) -> RequestError:
    return RequestError(_ncb.NETWORK_COMPUTE_STATUS_ANALYSIS_FAILED, header_pb2.CommonError.CODE_INVALID_REQUEST,
                        message)


@dataclass(frozen=True)
class WorkItem:
    """One image to analyse: decoded, with the angle that turns it upright."""

    key: str  # output image key
    frame: Frame
    rotation_deg: float
    source: image_pb2.ImageSource


def decode_input(image: image_pb2.Image, source: image_pb2.ImageSource) -> Frame:
    """The agent's decoder on one request image; `RequestError` when it is not an image."""
    response = image_pb2.ImageResponse(status=image_pb2.ImageResponse.STATUS_OK, source=source)
    response.shot.image.CopyFrom(image)
    try:
        frame = decode_image_response(response)
    except FrameDecodeError as exc:
        raise bad_request(f"image not decodable: {exc}") from None
    if frame.is_depth:
        raise bad_request("depth images are not analysed: send the camera's visual image")
    return frame


def network_compute_item(request: network_compute_bridge_pb2.NetworkComputeRequest) -> WorkItem:
    """The image of a deprecated-form `NetworkComputeRequest` (`input_data.image`)."""
    data = request.input_data
    if not data.HasField("image"):
        raise bad_request("no image: a worker needs input_data.image (the robot's bridge captures "
                          "image_source_and_service itself)")
    if data.rotate_image in ALIGN_REQUESTS:
        raise RequestError(
            _ncb.NETWORK_COMPUTE_STATUS_ROTATION_ERROR, header_pb2.CommonError.CODE_OK,
            f"{_Rotate.Name(data.rotate_image)} needs the camera, which a NetworkCompute image does not "
            "name: send it through WorkerCompute with its ImageSource, or turn it upright first")
    source = image_pb2.ImageSource()
    return WorkItem("detections", decode_input(data.image, source), 0.0, source)


def worker_compute_items(
    request: network_compute_bridge_pb2.WorkerComputeRequest, config: DetectorConfig
) -> list[WorkItem]:
    """Every image of a `WorkerComputeRequest`, each turned upright by its camera's angle."""
    images = request.input_data.images
    if not images:
        raise bad_request("no image: WorkerCompute needs input_data.images")
    items = []
    for i, capture in enumerate(images):
        camera = capture.source.name
        key = camera or f"image_{i}"
        items.append(WorkItem(key, decode_input(capture.shot.image, capture.source), config.rotation_for(camera),
                              capture.source))
    return items


def worker_min_confidence(request: network_compute_bridge_pb2.WorkerComputeRequest) -> float:
    values = request.input_data.parameters.custom_params.values
    if MIN_CONFIDENCE_PARAM in values:
        return float(values[MIN_CONFIDENCE_PARAM].double_value.value)
    return 0.0


def world_objects(found: Found, min_confidence: float, camera: str) -> list[world_object_pb2.WorldObject]:
    """Detections at or above `min_confidence` (best first) and every tag, as the stock servers
    write them."""
    out: list[world_object_pb2.WorldObject] = []
    detections = sorted((d for d in found.detections if d.score >= min_confidence), key=lambda d: -d.score)
    for d in detections:
        x1, y1, x2, y2 = d.box
        out.append(_object(len(out) + 1, d.label, d.score, [(x1, y1), (x2, y1), (x2, y2), (x1, y2)], camera))
    for tag in found.fiducials:
        obj = _object(len(out) + 1, tag.label, 1.0, [(float(x), float(y)) for x, y in tag.corners], camera)
        obj.apriltag_properties.tag_id = tag.tag_id
        obj.apriltag_properties.dimensions.x = obj.apriltag_properties.dimensions.y = tag.size_m
        out.append(obj)
    return out


def _object(n: int, label: str, score: float, polygon: list[tuple[float, float]],
            camera: str) -> world_object_pb2.WorldObject:
    obj = world_object_pb2.WorldObject(name=f"obj{n}_label_{label}")
    obj.image_properties.camera_source = camera
    for x, y in polygon:
        obj.image_properties.coordinates.vertexes.add(x=x, y=y)
    obj.additional_properties.Pack(wrappers_pb2.FloatValue(value=score))
    return obj


def annotated_image(item: WorkItem, found: Found, min_confidence: float) -> image_pb2.ImageResponse:
    """The input image with the returned boxes and tags drawn on it, as a JPEG ImageResponse
    (same size and orientation as the input, so the polygons fit it)."""
    kept = [d for d in found.detections if d.score >= min_confidence]
    drawn = annotate(item.frame.image, kept, found.fiducials)
    ok, jpeg = cv2.imencode(".jpg", drawn, [cv2.IMWRITE_JPEG_QUALITY, ANNOTATED_JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding of the annotated image failed")
    response = image_pb2.ImageResponse(status=image_pb2.ImageResponse.STATUS_OK, source=item.source)
    image = response.shot.image
    image.format, image.pixel_format = image_pb2.Image.FORMAT_JPEG, image_pb2.Image.PIXEL_FORMAT_RGB_U8
    image.rows, image.cols, image.data = drawn.shape[0], drawn.shape[1], jpeg.tobytes()
    return response
