"""What a recording holds: topic names, frame ids, JSON schemas and the (de)serialisation of
frames, detection results and commands. Shared by the writer (`agent.recording.writer`), the readers
(`agent.replay.mcap`) and the Foxglove live view (`agent.control.live_view`), so they cannot
drift apart: a Foxglove layout made on a recording works on the live view and back.

Layout of a recording (MCAP, opens in Foxglove); the live view publishes the same topics, with
the same schemas and frame ids, except `meta`, `depth`, `/detections`, `/pipeline/steps` and
`/robot/status` (replay data), and adds `/agent/state` (the agent's health, JSON):

- `/camera/<name>/compressed`  foxglove.CompressedImage: the JPEG bytes exactly as the robot sent
  them (frames that did not arrive as JPEG are stored losslessly as PNG)
- `/camera/<name>/image`        foxglove.RawImage: depth frames (32FC1, metres), bit-exact
- `/camera/<name>/depth`        foxglove.RawImage: depth registered to the image (`Frame.depth_m`)
- `/camera/<name>/annotations`  foxglove.ImageAnnotations: detection boxes and labels, with the
  image's timestamp so Foxglove draws them on the image
- `/camera/<name>/calibration`  foxglove.CameraCalibration: the pinhole intrinsics (original pixels)
- `/camera/<name>/meta`         JSON: everything else needed to rebuild the `Frame` (clocks,
  intrinsics, sensor frame name, transforms snapshot)
- `/tf`                         foxglove.FrameTransforms: `odom -> body` and `body -> <sensor
  frame>` from each frame's transforms snapshot (the 3D panel places cameras and images)
- `/sightings`                  foxglove.SceneUpdate: sightings at their `odom` positions
- `/detections`                 JSON: each `FrameResult` the cue engine observed, with its step
- `/pipeline/steps`             JSON: each control step (time, trigger "tick" or "cue"), with its step
- `/robot/status`               JSON: each robot status the pipeline acted on (or the error instead)
- `/events`                     JSON: cue firings and behavior state changes
- `/commands`                   JSON: every command the agent sent (or had refused)

Images, calibrations and annotations carry the camera's sensor frame name as frame id (e.g.
`frontleft_fisheye`), the child frame of its `/tf` transform.

"Steps" number the pipeline's inputs to the cue engine (observed results and control steps) in
the order they happened, which is what lets a replay reproduce the live run's commands exactly.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from typing import Any

import numpy as np

from perception.detection import FrameResult, Sighting
from perception.frame import Frame, PinholeIntrinsics

FORMAT_VERSION = 1
RECORDING_METADATA = "spot_cue_agent.recording"
RECORDING_STATS_METADATA = "spot_cue_agent.recording_stats"

TOPIC_DETECTIONS = "/detections"
TOPIC_STEPS = "/pipeline/steps"
TOPIC_STATUS = "/robot/status"
TOPIC_EVENTS = "/events"
TOPIC_COMMANDS = "/commands"
TOPIC_OPERATOR = "/operator"  # operator launches, stops, pauses, resumes: engine inputs (replayed)
TOPIC_TRANSFORMS = "/tf"
TOPIC_SIGHTINGS = "/sightings"
TOPIC_AGENT_STATE = "/agent/state"  # live view only: the agent's health, JSON

CAMERA_PREFIX = "/camera/"
KIND_COMPRESSED = "compressed"
KIND_RAW = "image"
KIND_DEPTH = "depth"  # depth registered to the image (`Frame.depth_m`), 32FC1 metres
KIND_ANNOTATIONS = "annotations"
KIND_META = "meta"
KIND_CALIBRATION = "calibration"

# Frame ids (Spot's frame names, as `bosdyn.client.frame_helpers` spells them).
FRAME_ODOM = "odom"
FRAME_BODY = "body"

SCHEMA_COMPRESSED_IMAGE = "foxglove.CompressedImage"
SCHEMA_RAW_IMAGE = "foxglove.RawImage"
SCHEMA_IMAGE_ANNOTATIONS = "foxglove.ImageAnnotations"

# Names of the JSON schemas (the `title` becomes the MCAP schema name).
JSON_SCHEMAS: dict[str, dict[str, Any]] = {
    KIND_META: {
        "title": "spot_cue_agent.FrameMeta",
        "type": "object",
        "properties": {
            "camera": {"type": "string"},
            "seq": {"type": "integer"},
            "time_robot": {"type": "number"},
            "time_local": {"type": "number"},
            "intrinsics": {"type": ["object", "null"]},
            "frame_name_image_sensor": {"type": "string"},
            "transforms": {"type": "object"},
            "transforms_snapshot_b64": {"type": ["string", "null"]},
        },
    },
    TOPIC_DETECTIONS: {
        "title": "spot_cue_agent.ObservedResult",
        "type": "object",
        "properties": {
            "step": {"type": "integer"},
            "time": {"type": "number"},
            "result": {"type": "object"},
        },
    },
    TOPIC_STEPS: {
        "title": "spot_cue_agent.ControlStep",
        "type": "object",
        "properties": {
            "step": {"type": "integer"},
            "time": {"type": "number"},
            "trigger": {"type": "string"},
        },
    },
    TOPIC_STATUS: {
        "title": "spot_cue_agent.RobotStatus",
        "type": "object",
        "properties": {
            "time": {"type": "number"},
            "status": {"type": ["object", "null"]},
            "error": {"type": ["object", "null"]},
        },
    },
    TOPIC_OPERATOR: {
        "title": "spot_cue_agent.OperatorInput",
        "type": "object",
        "properties": {
            "step": {"type": "integer"},
            "time": {"type": "number"},
            "kind": {"type": "string", "enum": ["launch", "stop", "pause_cues", "resume_cues"]},
            "name": {"type": "string"},
            "params": {"type": "object"},
            "reason": {"type": "string"},
        },
    },
    TOPIC_EVENTS: {
        "title": "spot_cue_agent.EngineEvent",
        "type": "object",
        "properties": {"kind": {"type": "string"}, "time": {"type": "number"}, "data": {}},
    },
    TOPIC_COMMANDS: {
        "title": "spot_cue_agent.Command",
        "type": "object",
        "properties": {
            "time": {"type": "number"},
            "command": {"type": "object"},
            "outcome": {"type": "string"},
        },
    },
}


def camera_topic(camera: str, kind: str) -> str:
    return f"{CAMERA_PREFIX}{camera}/{kind}"


def split_camera_topic(topic: str) -> tuple[str, str] | None:
    """`/camera/<name>/<kind>` -> (name, kind); None for any other topic."""
    if not topic.startswith(CAMERA_PREFIX):
        return None
    rest = topic[len(CAMERA_PREFIX) :]
    name, sep, kind = rest.rpartition("/")
    if not sep or not name:
        return None
    return name, kind


def image_frame_id(frame: Frame) -> str:
    """The frame id of a camera's images: its sensor frame (the child of its `/tf` transform)."""
    return frame.frame_name_image_sensor or frame.camera


def to_ns(seconds: float) -> int:
    """Seconds -> integer nanoseconds (MCAP log times, Foxglove timestamps)."""
    return int(round(seconds * 1e9))


def jsonable(value: Any) -> Any:
    """Plain JSON data for dataclasses, tuples, numpy values and enums; repr() for the rest.

    Floats stay floats: `json` writes them with repr(), which reads back to the same float, so
    times and poses survive a recording exactly.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if hasattr(value, "model_dump"):  # pydantic models
        return jsonable(value.model_dump(mode="json"))
    if hasattr(value, "value") and hasattr(value, "name"):  # enums
        return jsonable(value.value)
    return repr(value)


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode("utf-8")


def event_record(kind: str, time: float, data: Any) -> dict[str, Any]:
    """A `/events` message: a cue firing, behavior state change or agent event."""
    return {"kind": kind, "time": time, "data": jsonable(data)}


def agent_event_data(event: Any) -> dict[str, Any]:
    """The `data` of an `agent.core.events.AgentEvent` on `/events` (its message and source too)."""
    data = dict(event.data)
    if event.message:
        data.setdefault("message", event.message)
    data.setdefault("source", event.source)
    return data


def command_record(time: float, command: dict[str, Any], outcome: str) -> dict[str, Any]:
    """A `/commands` message: a command sent ("sent"), refused or failed ("refused: why")."""
    return {"time": time, "command": command, "outcome": outcome}


# --- frames --------------------------------------------------------------------------------


def _pose_list(se3: Any) -> list[float]:
    return [se3.x, se3.y, se3.z, se3.rot.w, se3.rot.x, se3.rot.y, se3.rot.z]


def frame_transforms(frame: Frame) -> dict[str, list[float]]:
    """The camera's pose in `body`, `odom` and `vision` (x, y, z, qw, qx, qy, qz), where known.

    Readable copies for people and tools; replay rebuilds the full snapshot from
    `transforms_snapshot_b64`.
    """
    snapshot = frame.transforms_snapshot
    if snapshot is None or not frame.frame_name_image_sensor:
        return {}
    from bosdyn.client import frame_helpers

    out: dict[str, list[float]] = {}
    for parent in (
        frame_helpers.BODY_FRAME_NAME,
        frame_helpers.ODOM_FRAME_NAME,
        frame_helpers.VISION_FRAME_NAME,
    ):
        try:
            tform = frame_helpers.get_a_tform_b(snapshot, parent, frame.frame_name_image_sensor)
        except Exception:  # a snapshot without that frame: the copy is only a convenience
            tform = None
        if tform is not None:
            out[f"{parent}_tform_camera"] = _pose_list(tform)
    return out


def frame_meta(frame: Frame, image_topic: str, image_encoding: str) -> dict[str, Any]:
    snapshot_b64 = None
    if frame.transforms_snapshot is not None:
        snapshot_b64 = base64.b64encode(frame.transforms_snapshot.SerializeToString()).decode()
    intrinsics = dataclasses.asdict(frame.intrinsics) if frame.intrinsics is not None else None
    return {
        "camera": frame.camera,
        "seq": frame.seq,
        "time_robot": frame.acquisition_time_robot,
        "time_local": frame.acquisition_time_local,
        "intrinsics": intrinsics,
        "frame_name_image_sensor": frame.frame_name_image_sensor,
        "is_depth": frame.is_depth,
        "image_scale": frame.image_scale,
        "has_depth_m": frame.depth_m is not None,
        "width": frame.width,
        "height": frame.height,
        "channels": 1 if frame.image.ndim == 2 else int(frame.image.shape[2]),
        "dtype": str(frame.image.dtype),
        "image_topic": image_topic,
        "image_encoding": image_encoding,
        "transforms": frame_transforms(frame),
        "transforms_snapshot_b64": snapshot_b64,
        "extra": _json_safe_extra(frame.extra),
    }


def _json_safe_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """The JSON-representable entries of `Frame.extra` (others are runtime-only objects)."""
    out = {}
    for key, value in extra.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            continue
        out[str(key)] = value
    return out


def frame_from_meta(
    meta: dict[str, Any],
    image: np.ndarray,
    encoded: bytes | None,
    depth_m: np.ndarray | None = None,
) -> Frame:
    """Rebuild a `Frame` from its recorded meta, its pixels and (for JPEG) the original bytes."""
    intrinsics = meta.get("intrinsics")
    snapshot = None
    if meta.get("transforms_snapshot_b64"):
        from bosdyn.api import geometry_pb2

        snapshot = geometry_pb2.FrameTreeSnapshot.FromString(
            base64.b64decode(meta["transforms_snapshot_b64"])
        )
    return Frame(
        camera=str(meta["camera"]),
        image=image,
        acquisition_time_robot=float(meta["time_robot"]),
        acquisition_time_local=float(meta["time_local"]),
        intrinsics=PinholeIntrinsics(**intrinsics) if intrinsics else None,
        frame_name_image_sensor=str(meta.get("frame_name_image_sensor", "")),
        transforms_snapshot=snapshot,
        encoded=encoded,
        is_depth=bool(meta.get("is_depth", False)),
        seq=int(meta.get("seq", 0)),
        extra=dict(meta.get("extra") or {}),
        image_scale=float(meta.get("image_scale", 1.0)),
        depth_m=depth_m,
    )


# --- detection results ---------------------------------------------------------------------


def result_to_dict(result: FrameResult) -> dict[str, Any]:
    return jsonable(result)


def _tuple_or_none(value: Any) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


def result_from_dict(data: dict[str, Any]) -> FrameResult:
    sightings = []
    for s in data.get("sightings", []):
        s = dict(s)
        s["box"] = tuple(s["box"])
        s["image_size"] = tuple(s["image_size"])
        s["position_odom"] = _tuple_or_none(s.get("position_odom"))
        if s.get("keypoints") is not None:
            s["keypoints"] = tuple(tuple(k) for k in s["keypoints"])
        sightings.append(Sighting(**s))
    fields = {f.name for f in dataclasses.fields(FrameResult)}
    kwargs = {k: v for k, v in data.items() if k in fields and k != "sightings"}
    return FrameResult(sightings=sightings, **kwargs)
