"""What the robot's network compute bridge does to images around a worker call: capture from the
sim's own cameras, rotate for the worker (deprecated `rotate_image`) and map the worker's polygons
back to the captured image's pixels, and place objects in 3D from the camera's depth.

Rotation follows network_compute_bridge.proto: ALIGN_HORIZONTAL turns the image so the world's
up (gravity, from the shot's transforms snapshot) points up; ALIGN_WITH_BODY so the body's up
does. The worker sees the rotated image (canvas expanded, nothing cropped); the client gets the
*unrotated* image, polygons in its pixels, and `image_rotation_angle` (counter-clockwise radians),
which is exactly what the SDK's `identify_object.py` undoes to draw them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from bosdyn.api import geometry_pb2, image_pb2, network_compute_bridge_pb2, world_object_pb2
from bosdyn.client.frame_helpers import BODY_FRAME_NAME, VISION_FRAME_NAME, get_a_tform_b
from bosdyn.client.math_helpers import SE3Pose

from perception.rotation import UprightRotation, upright_rotation
from sim.cameras import CameraSpec
from sim.services.frames import set_edge

RotateImage = network_compute_bridge_pb2.NetworkComputeInputData.RotateImage
Image = image_pb2.Image
ROTATED_JPEG_QUALITY = 95


class ImageCaptureError(Exception):
    """The bridge could not produce the image a request asked for (message says why)."""


def rotation_angle_deg(shot: image_pb2.ImageCapture, mode: int) -> float:
    """Counter-clockwise degrees that level the image for `mode` (0 for NO_ROTATION / UNKNOWN)."""
    if mode in (RotateImage.ROTATE_IMAGE_UNKNOWN, RotateImage.ROTATE_IMAGE_NO_ROTATION):
        return 0.0
    reference = VISION_FRAME_NAME if mode == RotateImage.ROTATE_IMAGE_ALIGN_HORIZONTAL else BODY_FRAME_NAME
    reference_tform_sensor = get_a_tform_b(shot.transforms_snapshot, reference, shot.frame_name_image_sensor)
    if reference_tform_sensor is None:
        raise ImageCaptureError(f"no transform from {reference!r} to {shot.frame_name_image_sensor!r} in the shot")
    # The reference frame's up axis in the optical frame (x right, y down in the image).
    up = reference_tform_sensor.rotation.to_matrix().T @ np.array([0.0, 0.0, 1.0])
    if math.hypot(up[0], up[1]) < 1e-6:
        return 0.0  # looking straight up or down: no horizon to level
    # A counter-clockwise screen rotation by theta maps (x, y) to (x c + y s, -x s + y c);
    # this theta sends `up` to the image's up, (0, -1).
    return math.degrees(math.atan2(up[0], -up[1]))


def decode_pixels(image: image_pb2.Image) -> np.ndarray:
    """A grey or RGB image as a numpy array (JPEG or RAW)."""
    if image.format == Image.FORMAT_JPEG:
        pixels = cv2.imdecode(np.frombuffer(image.data, np.uint8), cv2.IMREAD_UNCHANGED)
        if pixels is None:
            raise ImageCaptureError("captured JPEG does not decode")
        return pixels
    channels = 3 if image.pixel_format == Image.PIXEL_FORMAT_RGB_U8 else 1
    if image.pixel_format not in (Image.PIXEL_FORMAT_GREYSCALE_U8, Image.PIXEL_FORMAT_RGB_U8):
        raise ImageCaptureError(f"cannot rotate pixel format {Image.PixelFormat.Name(image.pixel_format)}")
    shape = (image.rows, image.cols, channels) if channels == 3 else (image.rows, image.cols)
    return np.frombuffer(image.data, np.uint8).reshape(shape)


def rotated_image(image: image_pb2.Image, rotation: UprightRotation) -> image_pb2.Image:
    """`image` turned by `rotation`, in the same format and pixel format."""
    pixels = rotation.apply(decode_pixels(image))
    out = Image(rows=pixels.shape[0], cols=pixels.shape[1], format=image.format, pixel_format=image.pixel_format)
    if image.format == Image.FORMAT_JPEG:
        ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, ROTATED_JPEG_QUALITY])
        if not ok:
            raise ImageCaptureError("JPEG encoding of the rotated image failed")
        out.data = buf.tobytes()
    else:
        out.data = np.ascontiguousarray(pixels).tobytes()
    return out


def rotation_for(image: image_pb2.Image, angle_deg: float) -> UprightRotation:
    return upright_rotation(round(angle_deg, 6), image.cols, image.rows)


def unrotate_objects(objects: list[world_object_pb2.WorldObject], rotation: UprightRotation) -> None:
    """Map each object's polygon from the rotated image back to the captured image's pixels."""
    if rotation.is_identity:
        return
    for obj in objects:
        vertexes = obj.image_properties.coordinates.vertexes
        if not vertexes:
            continue
        back = rotation.coords_to_source(np.array([[v.x, v.y] for v in vertexes]))
        for vertex, (x, y) in zip(vertexes, back):
            vertex.x, vertex.y = float(x), float(y)


def add_depth(
    obj: world_object_pb2.WorldObject,
    capture: image_pb2.ImageResponse,
    depth: tuple[np.ndarray, CameraSpec] | None,
) -> None:
    """Stamp `obj` with the capture's source and time and, when depth covers its polygon, a frame
    named after it in the shot's transforms snapshot (`image_properties.frame_name_image_coordinates`,
    as the SDK's fetch tutorial reads it) at the median depth of the polygon's middle."""
    shot = capture.shot
    obj.image_properties.camera_source = capture.source.name
    obj.acquisition_time.CopyFrom(shot.acquisition_time)
    vertexes = obj.image_properties.coordinates.vertexes
    if depth is None or not vertexes or not obj.name:
        return
    metres, camera = depth
    xs = np.array([v.x for v in vertexes])
    ys = np.array([v.y for v in vertexes])
    centre_x, centre_y = float(xs.mean()), float(ys.mean())
    half_w, half_h = max(1.0, (xs.max() - xs.min()) / 4), max(1.0, (ys.max() - ys.min()) / 4)
    rows, cols = metres.shape
    x0, x1 = int(max(0, centre_x - half_w)), int(min(cols, centre_x + half_w + 1))
    y0, y1 = int(max(0, centre_y - half_h)), int(min(rows, centre_y + half_h + 1))
    patch = metres[y0:y1, x0:x1]
    valid = patch[np.isfinite(patch) & (patch > 0)]
    if valid.size == 0:
        return
    distance = float(np.median(valid))
    # The depth source shares the visual image's pixels and intrinsics (`*_depth_in_visual_frame`).
    ray = np.array([(centre_x - 0.5 - camera.cx) / camera.fx, (centre_y - 0.5 - camera.cy) / camera.fy, 1.0])
    point = ray * distance
    snapshot = geometry_pb2.FrameTreeSnapshot()
    snapshot.CopyFrom(shot.transforms_snapshot)
    sensor_tform_object = SE3Pose(float(point[0]), float(point[1]), float(point[2]), SE3Pose.from_identity().rotation)
    set_edge(snapshot, obj.name, shot.frame_name_image_sensor, sensor_tform_object)
    obj.transforms_snapshot.CopyFrom(snapshot)
    obj.image_properties.frame_name_image_coordinates = obj.name
