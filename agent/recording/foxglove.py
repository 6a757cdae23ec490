"""Foxglove messages for what the agent sees, built once for both the recorder and the live view.

One builder per topic kind (topic names and frame ids come from `agent.recording.format`), so a
Foxglove layout made on a recording works on the live view and back:

- images: the robot's JPEG as received; other 8-bit frames as PNG (recording: lossless) or JPEG
  (live view: small); depth frames (float32 metres) as `foxglove.RawImage` 32FC1;
- `foxglove.CameraCalibration` from the frame's pinhole intrinsics (original image pixels);
- `foxglove.ImageAnnotations`: detection boxes and labels, stamped with the image's time;
- `foxglove.FrameTransforms`: `odom -> body` and `body -> <camera sensor frame>` from the
  frame's own transforms snapshot, so the 3D panel places the cameras and their images;
- `foxglove.SceneUpdate`: each sighting with a position as a sphere (a cube for tags) and a
  label at its `odom` position.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np
from foxglove import messages as fm

from agent.recording import format as fmt
from perception.annotate import KEYPOINT_MIN_SCORE, SKELETON, label_rgb
from perception.detection import FrameResult
from perception.frame import Frame

log = logging.getLogger(__name__)

# A sighting stays in the 3D view this long unless seen again (cameras run at ~15 Hz, the live
# view at a few Hz): long enough not to flicker, short enough that gone means gone.
SIGHTING_LIFETIME_S = 1.0


def color_for(label: str, alpha: float = 1.0) -> fm.Color:
    r, g, b = label_rgb(label)  # the colour the drawn images give this class too
    return fm.Color(r=r, g=g, b=b, a=alpha)


def stamp(seconds: float) -> fm.Timestamp:
    ns = fmt.to_ns(seconds)
    return fm.Timestamp(sec=ns // 1_000_000_000, nsec=ns % 1_000_000_000)


def encode_png(image: np.ndarray, camera: str) -> bytes:
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"cannot PNG-encode a {image.shape} frame from {camera}")
    return png.tobytes()


def encode_jpeg(image: np.ndarray, camera: str, quality: int = 80) -> bytes:
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cannot JPEG-encode a {image.shape} frame from {camera}")
    return jpeg.tobytes()


def raw_float_image(image: np.ndarray, when: float, frame_id: str) -> fm.RawImage:
    """A float32 image (metres) as 32FC1, bit-exact."""
    height, width = image.shape
    return fm.RawImage(
        timestamp=stamp(when),
        frame_id=frame_id,
        width=width,
        height=height,
        encoding="32FC1",
        step=width * 4,
        data=np.ascontiguousarray(image, dtype="<f4").tobytes(),
    )


def image_message(frame: Frame, lossless: bool) -> tuple[str, str, Any]:
    """(topic, encoding, message) of a frame's image.

    The robot's JPEG goes out untouched. Other 8-bit frames are PNG when `lossless` (recordings:
    replay must get the same pixels), else JPEG (live view: bandwidth). Depth stays 32FC1.
    """
    when, frame_id = frame.acquisition_time_local, fmt.image_frame_id(frame)
    image = frame.image
    if frame.encoded is not None or image.dtype == np.uint8:
        if frame.encoded is not None:
            encoding, data = "jpeg", frame.encoded  # as received: never re-encoded
        elif lossless:
            encoding, data = "png", encode_png(image, frame.camera)
        else:
            encoding, data = "jpeg", encode_jpeg(image, frame.camera)
        topic = fmt.camera_topic(frame.camera, fmt.KIND_COMPRESSED)
        message = fm.CompressedImage(
            timestamp=stamp(when), frame_id=frame_id, data=data, format=encoding
        )
        return topic, encoding, message
    if image.dtype == np.float32 and image.ndim == 2:
        topic = fmt.camera_topic(frame.camera, fmt.KIND_RAW)
        return topic, "32FC1", raw_float_image(image, when, frame_id)
    raise ValueError(f"cannot publish a {image.dtype} {image.shape} frame from {frame.camera}")


def calibration_message(frame: Frame) -> fm.CameraCalibration | None:
    """The frame's pinhole model, in the pixels of the image as the camera took it."""
    k = frame.intrinsics
    if k is None:
        return None
    width, height = frame.original_size
    return fm.CameraCalibration(
        timestamp=stamp(frame.acquisition_time_local),
        frame_id=fmt.image_frame_id(frame),
        width=width,
        height=height,
        distortion_model="plumb_bob",
        D=[0.0] * 5,  # the robot's image service hands out rectified pinhole images
        K=[k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0],
        R=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        P=[k.fx, 0.0, k.cx, 0.0, 0.0, k.fy, k.cy, 0.0, 0.0, 0.0, 1.0, 0.0],
    )


def _transform(snapshot: Any, parent: str, child: str, when: fm.Timestamp) -> Any:
    from bosdyn.client.frame_helpers import get_a_tform_b

    try:
        pose = get_a_tform_b(snapshot, parent, child, validate=False)
    except Exception:  # a malformed snapshot: that transform is unknown, nothing else is lost
        pose = None
    if pose is None:
        return None
    return fm.FrameTransform(
        timestamp=when,
        parent_frame_id=parent,
        child_frame_id=child,
        translation=fm.Vector3(x=pose.x, y=pose.y, z=pose.z),
        rotation=fm.Quaternion(x=pose.rot.x, y=pose.rot.y, z=pose.rot.z, w=pose.rot.w),
    )


def transforms_message(frame: Frame) -> fm.FrameTransforms | None:
    """`odom -> body` and `body -> sensor` at the frame's acquisition time, from its snapshot.

    One tree rooted at `odom` (Spot's snapshots are rooted at `body`; Foxglove wants each frame
    to have one parent, and sightings are in `odom`).
    """
    snapshot = frame.transforms_snapshot
    if snapshot is None:
        return None
    when = stamp(frame.acquisition_time_local)
    transforms = [_transform(snapshot, fmt.FRAME_ODOM, fmt.FRAME_BODY, when)]
    sensor = frame.frame_name_image_sensor
    if sensor and sensor not in (fmt.FRAME_BODY, fmt.FRAME_ODOM):
        transforms.append(_transform(snapshot, fmt.FRAME_BODY, sensor, when))
    found = [t for t in transforms if t is not None]
    return fm.FrameTransforms(transforms=found) if found else None


def annotations_message(result: FrameResult) -> fm.ImageAnnotations:
    """Boxes and labels on the image, in the original image's pixels, at the image's time."""
    when = stamp(result.time_local)
    points, texts = [], []
    for s in result.sightings:
        color = color_for(s.label)
        x1, y1, x2, y2 = (float(v) for v in s.box)
        points.append(
            fm.PointsAnnotation(
                timestamp=when,
                type=fm.PointsAnnotationType.LineLoop,
                points=[
                    fm.Point2(x=x1, y=y1),
                    fm.Point2(x=x2, y=y1),
                    fm.Point2(x=x2, y=y2),
                    fm.Point2(x=x1, y=y2),
                ],
                outline_color=color,
                thickness=2.0,
            )
        )
        extra = f" {s.distance_m:.1f}m" if s.distance_m is not None else ""
        texts.append(
            fm.TextAnnotation(
                timestamp=when,
                position=fm.Point2(x=x1, y=max(y1 - 2.0, 12.0)),
                text=f"{s.label} {s.score:.2f}{extra}",
                font_size=14.0,
                text_color=fm.Color(r=1.0, g=1.0, b=1.0, a=1.0),
                background_color=color_for(s.label, 0.7),
            )
        )
        if s.keypoints:
            points.append(_keypoints_annotation(s.keypoints, when))
    return fm.ImageAnnotations(timestamp=when, points=points, texts=texts)


def _keypoints_annotation(keypoints: tuple[tuple[float, float, float], ...], when: fm.Timestamp) -> Any:
    """A person's skeleton (the keypoints scoring >= KEYPOINT_MIN_SCORE) as line segments."""
    seen = [k[2] >= KEYPOINT_MIN_SCORE for k in keypoints]
    segment_points = [
        fm.Point2(x=float(keypoints[i][0]), y=float(keypoints[i][1]))
        for a, b in SKELETON if a < len(keypoints) and b < len(keypoints) and seen[a] and seen[b]
        for i in (a, b)
    ]
    return fm.PointsAnnotation(
        timestamp=when,
        type=fm.PointsAnnotationType.LineList,
        points=segment_points,
        outline_color=fm.Color(r=1.0, g=1.0, b=1.0, a=0.9),
        thickness=1.5,
    )


def sightings_message(result: FrameResult) -> fm.SceneUpdate | None:
    """The result's placed sightings as entities in `odom`; None if none has a position."""
    when = stamp(result.time_local)
    lifetime = fm.Duration(sec=int(SIGHTING_LIFETIME_S), nsec=int(SIGHTING_LIFETIME_S % 1 * 1e9))
    entities = []
    for i, s in enumerate(result.sightings):
        if s.position_odom is None:
            continue
        x, y, z = (float(v) for v in s.position_odom)
        color = color_for(s.label, 0.8)
        is_tag = s.label.startswith("tag:")
        size = fm.Vector3(x=0.3, y=0.3, z=0.3) if is_tag else fm.Vector3(x=0.5, y=0.5, z=0.5)
        shape = fm.Pose(position=fm.Vector3(x=x, y=y, z=z), orientation=fm.Quaternion(w=1.0))
        label = fm.Pose(position=fm.Vector3(x=x, y=y, z=z + 0.5), orientation=fm.Quaternion(w=1.0))
        entities.append(
            fm.SceneEntity(
                timestamp=when,
                frame_id=fmt.FRAME_ODOM,
                id=f"{result.camera}/{i}",
                lifetime=lifetime,
                cubes=[fm.CubePrimitive(pose=shape, size=size, color=color)] if is_tag else [],
                spheres=[] if is_tag else [fm.SpherePrimitive(pose=shape, size=size, color=color)],
                texts=[
                    fm.TextPrimitive(
                        pose=label, billboard=True, font_size=14.0, scale_invariant=True,
                        color=fm.Color(r=1.0, g=1.0, b=1.0, a=1.0),
                        text=f"{s.label} {s.score:.2f} ({result.camera})",
                    )
                ],
            )
        )
    return fm.SceneUpdate(entities=entities) if entities else None


def frame_context_messages(frame: Frame) -> list[tuple[str, Any]]:
    """(topic, message) of what places a frame's image: its transforms and its calibration.
    Sent before the image, so a viewer that has the image can place it."""
    out: list[tuple[str, Any]] = []
    transforms = transforms_message(frame)
    if transforms is not None:
        out.append((fmt.TOPIC_TRANSFORMS, transforms))
    calibration = calibration_message(frame)
    if calibration is not None:
        out.append((fmt.camera_topic(frame.camera, fmt.KIND_CALIBRATION), calibration))
    return out


def result_messages(result: FrameResult) -> list[tuple[str, Any]]:
    """(topic, message) for a detection result: boxes on the image, sightings in 3D."""
    out: list[tuple[str, Any]] = [
        (fmt.camera_topic(result.camera, fmt.KIND_ANNOTATIONS), annotations_message(result))
    ]
    sightings = sightings_message(result)
    if sightings is not None:
        out.append((fmt.TOPIC_SIGHTINGS, sightings))
    return out
