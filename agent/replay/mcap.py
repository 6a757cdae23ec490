"""Reading MCAP recordings for replay: every recorded item (`agent.replay.recorded`: frames,
observations, control steps, robot statuses, events, commands) in the order it happened, with
what was lost and where.

Built on `agent.recording.salvage`, so a damaged or truncated recording gives what is readable.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from agent.core.observers import OperatorInput
from agent.core.seams import RobotStatus
from agent.recording import format as fmt
from agent.recording.salvage import (
    NotAnMcapFile,
    ScannedMessage,
    ScanResult,
    check_magic,
    read_summary,
    scan_messages,
)
from agent.replay.images import ImageDecoder, decode_image, decode_recorded_jpeg, image_problem
from agent.replay.reading import PrefetchingSource, ReadReport, ReplayInputError
from agent.replay.recorded import (
    RecordedCommand,
    RecordedEvent,
    RecordedFrame,
    RecordedItem,
    RecordedObservation,
    RecordedOperator,
    RecordedStatus,
    RecordedStep,
)
from behaviors.commands import command_from_dict
from perception.frame import Frame


def _float_image(msg: Any) -> np.ndarray:
    rows = np.frombuffer(msg.data, dtype="<f4").reshape(msg.height, msg.step // 4)
    return np.ascontiguousarray(rows[:, : msg.width], dtype=np.float32)


_JSON_TOPICS = (
    fmt.TOPIC_DETECTIONS,
    fmt.TOPIC_STEPS,
    fmt.TOPIC_OPERATOR,
    fmt.TOPIC_STATUS,
    fmt.TOPIC_EVENTS,
    fmt.TOPIC_COMMANDS,
)


def _json_item(topic: str, data: dict[str, Any]) -> RecordedItem:
    """The recorded item a message on one of the JSON topics holds."""
    if topic == fmt.TOPIC_DETECTIONS:
        return RecordedObservation(
            int(data["step"]), float(data["time"]), fmt.result_from_dict(data["result"])
        )
    if topic == fmt.TOPIC_STEPS:
        return RecordedStep(int(data["step"]), float(data["time"]), str(data.get("trigger", "tick")))
    if topic == fmt.TOPIC_OPERATOR:
        op = OperatorInput(data["kind"], str(data.get("name", "")), dict(data.get("params") or {}),
                           str(data.get("reason", "")))
        return RecordedOperator(int(data["step"]), float(data["time"]), op)
    if topic == fmt.TOPIC_STATUS:
        error = data.get("error") or {}
        status = data.get("status")
        return RecordedStatus(
            float(data["time"]),
            RobotStatus(**status) if status else None,
            error.get("kind"),
            str(error.get("message", "")),
        )
    if topic == fmt.TOPIC_EVENTS:
        return RecordedEvent(str(data["kind"]), float(data["time"]), data.get("data"))
    return RecordedCommand(
        float(data["time"]),
        command_from_dict(data["command"]),
        str(data.get("outcome", "sent")),
    )


class _ProtobufDecoders:
    """Message classes built from the schemas stored in the recording itself."""

    def __init__(self) -> None:
        self._classes: dict[int, Any] = {}

    def decode(self, scanned: ScannedMessage) -> Any:
        schema = scanned.schema
        if schema is None or schema.encoding != "protobuf":
            raise ValueError("channel has no protobuf schema")
        cls = self._classes.get(schema.id)
        if cls is None:
            from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

            pool = descriptor_pool.DescriptorPool()
            for file in descriptor_pb2.FileDescriptorSet.FromString(schema.data).file:
                pool.Add(file)
            cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(schema.name))
            self._classes[schema.id] = cls
        return cls.FromString(scanned.message.data)


class McapRecording:
    """A recording made by `agent.recording.writer.Recorder`, read back in file (= event) order."""

    def __init__(self, path: str | Path, decode: ImageDecoder = decode_image) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ReplayInputError(f"{self.path}: no such file")
        try:
            check_magic(self.path)
        except NotAnMcapFile as exc:
            raise ReplayInputError(str(exc)) from exc
        self._decode = decode
        self.report = ReadReport(str(self.path), "mcap")
        self.scan = ScanResult()
        self.frames_read: Counter[str] = Counter()  # per camera
        self.cameras = self._cameras_from_summary()

    def _cameras_from_summary(self) -> list[str]:
        with open(self.path, "rb") as f:
            summary, _ = read_summary(f, f.seek(0, 2))
        if summary is None:
            return []  # found while reading instead
        names = set()
        for channel in summary.channels.values():
            parts = fmt.split_camera_topic(channel.topic)
            if parts and parts[1] in (fmt.KIND_COMPRESSED, fmt.KIND_RAW):
                names.add(parts[0])
        return sorted(names)

    def items(self) -> Iterator[RecordedItem]:
        """Every readable recorded item, in the order it happened. Fills `self.report`."""
        protobuf = _ProtobufDecoders()
        # A frame's meta and registered depth are written just before its image, at its time.
        pending_meta: dict[tuple[str, int], dict[str, Any]] = {}
        pending_depth: dict[tuple[str, int], np.ndarray] = {}
        last_step = -1
        self.scan = ScanResult()
        self.frames_read = Counter()
        for scanned in scan_messages(self.path, self.scan):
            topic = scanned.channel.topic
            where = f"message {scanned.index} ({topic}, byte {scanned.offset})"
            try:
                parts = fmt.split_camera_topic(topic)
                if parts is not None:
                    frame = self._camera_message(
                        parts, scanned, where, protobuf, pending_meta, pending_depth
                    )
                    if frame is not None:
                        yield RecordedFrame(frame)
                elif topic in _JSON_TOPICS:
                    data = json.loads(scanned.message.data)
                    if topic in (fmt.TOPIC_DETECTIONS, fmt.TOPIC_STEPS, fmt.TOPIC_OPERATOR):
                        last_step = self._check_step(int(data["step"]), last_step, where)
                    yield _json_item(topic, data)
            except Exception as exc:  # one damaged message loses that message only
                self.report.lost(where, f"unreadable: {type(exc).__name__}: {exc}")
        self._finish_report(pending_meta, last_step)

    def _check_step(self, step: int, last_step: int, where: str) -> int:
        """Report engine steps missing before `step`; the last step seen so far."""
        if step != last_step + 1:
            self.report.lost(
                where,
                f"engine steps {last_step + 1}..{step - 1} missing "
                "(dropped while recording or unreadable)",
            )
        return max(last_step, step)

    def _camera_message(
        self,
        parts: tuple[str, str],
        scanned: ScannedMessage,
        where: str,
        protobuf: _ProtobufDecoders,
        pending_meta: dict[tuple[str, int], dict[str, Any]],
        pending_depth: dict[tuple[str, int], np.ndarray],
    ) -> Frame | None:
        """A message on a camera topic: its image makes a frame (with the meta and depth read
        before it); meta and depth are kept until their image comes."""
        camera, kind = parts
        key = (camera, scanned.message.log_time)
        if kind == fmt.KIND_META:
            pending_meta[key] = json.loads(scanned.message.data)
            return None
        if kind == fmt.KIND_DEPTH:
            pending_depth[key] = _float_image(protobuf.decode(scanned))
            return None
        if kind not in (fmt.KIND_COMPRESSED, fmt.KIND_RAW):
            return None
        meta = pending_meta.pop(key, None)
        depth = pending_depth.pop(key, None)
        if meta is not None and meta.get("has_depth_m") and depth is None:
            self.report.lost(where, "frame's registered depth is missing")
        frame = self._frame(camera, kind, meta, protobuf.decode(scanned), where, depth)
        if frame is not None:
            self.report.frames += 1
            self.frames_read[camera] += 1
            if camera not in self.cameras:
                self.cameras.append(camera)
        return frame

    def frames(self) -> Iterator[Frame]:
        for item in self.items():
            if isinstance(item, RecordedFrame):
                yield item.frame

    def _frame(
        self,
        camera: str,
        kind: str,
        meta: dict[str, Any] | None,
        msg: Any,
        where: str,
        depth_m: np.ndarray | None = None,
    ) -> Frame | None:
        encoded: bytes | None = None
        if kind == fmt.KIND_COMPRESSED:
            data = bytes(msg.data)
            if msg.format == "jpeg" and meta is not None and self._decode is decode_image:
                image = decode_recorded_jpeg(
                    data, int(meta.get("channels", 1)), float(meta.get("image_scale", 1.0))
                )
            else:
                image = self._decode(data)
            if image is None:
                why = image_problem(data) or "does not decode"
                self.report.lost(where, f"{msg.format or 'image'} of {len(data)} bytes: {why}")
                return None
            if msg.format == "jpeg":
                encoded = data  # the robot's original bytes, for re-recording untouched
        else:
            if msg.encoding != "32FC1":
                self.report.lost(where, f"raw image encoding {msg.encoding!r} not supported")
                return None
            image = _float_image(msg)
        if meta is None:
            self.report.lost(where, "frame without its meta: intrinsics and transforms unknown")
            t = msg.timestamp.seconds + msg.timestamp.nanos * 1e-9
            meta = {"camera": camera, "time_robot": t, "time_local": t, "seq": 0}
            meta["is_depth"] = kind == fmt.KIND_RAW
        return fmt.frame_from_meta(meta, image, encoded, depth_m)

    def _frames_listed(self, scan: ScanResult) -> dict[str, tuple[int, int]]:
        """camera -> (frames the file's statistics list, frames read), when it has statistics."""
        if scan.statistics is None:
            return {}
        out = {}
        for channel_id, count in scan.statistics.channel_message_counts.items():
            channel = scan.channels.get(channel_id)
            parts = fmt.split_camera_topic(channel.topic) if channel is not None else None
            if parts is not None and parts[1] in (fmt.KIND_COMPRESSED, fmt.KIND_RAW):
                out[parts[0]] = (count, self.frames_read.get(parts[0], 0))
        return out

    def _finish_report(
        self, pending_meta: dict[tuple[str, int], dict[str, Any]], last_step: int
    ) -> None:
        report, scan = self.report, self.scan
        for loss in scan.losses:
            report.lost(f"byte {loss.offset}", loss.what)
        if pending_meta:
            report.lost("recording", f"{len(pending_meta)} frames' images are missing (meta only)")
        if scan.statistics is not None and scan.statistics.message_count > scan.messages:
            report.lost(
                "recording",
                f"the file lists {scan.statistics.message_count} messages, "
                f"{scan.messages} were readable",
            )
        for camera, (listed, read) in sorted(self._frames_listed(scan).items()):
            if read != listed:
                report.lost("recording", f"{camera}: {read} of the {listed} frames the file lists "
                                         "were replayable")
        stats = scan.metadata.get(fmt.RECORDING_STATS_METADATA)
        if stats is not None:
            steps = int(json.loads(stats.get("engine_steps", "0")))
            if steps > last_step + 1:
                report.lost(
                    "recording",
                    f"engine steps {last_step + 1}..{steps - 1} missing "
                    "(dropped while recording or unreadable)",
                )
            dropped = int(json.loads(stats.get("dropped_total", "0")))
            if dropped:
                report.note(
                    "recording",
                    f"the recorder dropped {dropped} items while recording (queue full): "
                    f"{stats.get('dropped')}",
                )


class McapFrameSource(PrefetchingSource):
    """Frames of an MCAP recording, in recorded order."""

    def __init__(
        self, path: str | Path, decode: ImageDecoder = decode_image, prefetch: int = 4
    ) -> None:
        super().__init__(prefetch)
        self.recording = McapRecording(path, decode)
        self.report = self.recording.report
        self.cameras = self.recording.cameras

    def _iter_frames(self) -> Iterator[Frame]:
        return self.recording.frames()
