"""Frame sources for replay: MCAP recordings, video files and folders of images.

Every source reads what it can and reports what it could not (`ReadReport`: what was lost and
where: byte offset, message index, file name, frame number), and never raises for bad data
once opened. Opening raises `ReplayInputError` with a clear message when the input is not
usable at all (missing, not a recording/video/image folder).

Reading and decoding run on a helper thread a few frames ahead of the consumer, so JPEG
decoding overlaps with detection instead of adding to it.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np

from agent import recording_format as fmt
from agent.mcap_salvage import (
    MCAP_MAGIC,
    NotAnMcapFile,
    ScannedMessage,
    ScanResult,
    check_magic,
    scan_messages,
)
from agent.robot import RobotStatus
from behaviors.commands import MotionCommand, command_from_dict
from perception.detection import FrameResult
from perception.frame import Frame

ImageDecoder = Callable[[bytes], "np.ndarray | None"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
JPEG_MAGIC = b"\xff\xd8\xff"


class ReplayInputError(ValueError):
    """The input cannot be replayed at all (missing, unsupported, nothing readable)."""


@dataclass(frozen=True)
class ReadProblem:
    where: str  # "byte 1234", "message 17 on /camera/x/compressed", "img_003.jpg", "frame 120"
    what: str


@dataclass
class ReadReport:
    """What a source read and what it lost."""

    source: str
    kind: str  # "mcap", "video", "images"
    frames: int = 0
    problems: list[ReadProblem] = field(default_factory=list)
    complete: bool = True  # False when the input ended early or parts were unreadable

    def lost(self, where: str, what: str) -> None:
        self.problems.append(ReadProblem(where, what))
        self.complete = False

    def note(self, where: str, what: str) -> None:
        """A problem that loses nothing (e.g. an assumption made)."""
        self.problems.append(ReadProblem(where, what))

    @property
    def readable(self) -> bool:
        return self.frames > 0


def decode_image(data: bytes) -> np.ndarray | None:
    """JPEG / PNG bytes -> grey (H x W) or BGR (H x W x 3) uint8 as stored; None if unusable."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint8:
        return None
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] != 3:
        return None
    return image


_REDUCED_FLAGS = {
    (1, 1): cv2.IMREAD_GRAYSCALE,
    (1, 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    (1, 4): cv2.IMREAD_REDUCED_GRAYSCALE_4,
    (1, 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
    (3, 1): cv2.IMREAD_COLOR,
    (3, 2): cv2.IMREAD_REDUCED_COLOR_2,
    (3, 4): cv2.IMREAD_REDUCED_COLOR_4,
    (3, 8): cv2.IMREAD_REDUCED_COLOR_8,
}


def decode_recorded_jpeg(data: bytes, channels: int, image_scale: float) -> np.ndarray | None:
    """A recorded JPEG decoded the way the live agent decoded it: same channels, same reduction.

    The live source may decode a large JPEG reduced (`Frame.image_scale` < 1); replay must
    give the detector the very same pixels, so it uses the same OpenCV flag.
    """
    factor = max(1, round(1.0 / image_scale)) if image_scale > 0 else 1
    flag = _REDUCED_FLAGS.get((channels, factor))
    if flag is None:
        return decode_image(data)
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    return image if image is not None and image.dtype == np.uint8 else None


def _float_image(msg: Any) -> np.ndarray:
    rows = np.frombuffer(msg.data, dtype="<f4").reshape(msg.height, msg.step // 4)
    return np.ascontiguousarray(rows[:, : msg.width], dtype=np.float32)


# --- recorded items --------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedFrame:
    frame: Frame


@dataclass(frozen=True)
class RecordedObservation:
    """A detection result the live cue engine observed (engine input `step`)."""

    step: int
    time: float
    result: FrameResult


@dataclass(frozen=True)
class RecordedStep:
    """A control step of the live pipeline (engine input `step`): "tick" (periodic) or "cue"."""

    step: int
    time: float
    trigger: str


@dataclass(frozen=True)
class RecordedStatus:
    """The robot status a live control step got, or the error it got instead."""

    time: float
    status: RobotStatus | None
    error_kind: str | None = None
    error_message: str = ""


@dataclass(frozen=True)
class RecordedEvent:
    kind: str
    time: float
    data: Any


@dataclass(frozen=True)
class RecordedCommand:
    time: float
    command: MotionCommand
    outcome: str


RecordedItem = (
    RecordedFrame | RecordedObservation | RecordedStep | RecordedStatus | RecordedEvent | RecordedCommand
)


_JSON_TOPICS = (
    fmt.TOPIC_DETECTIONS,
    fmt.TOPIC_STEPS,
    fmt.TOPIC_STATUS,
    fmt.TOPIC_EVENTS,
    fmt.TOPIC_COMMANDS,
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
    """A recording made by `agent.recording.Recorder`, read back in file (= event) order."""

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
        self.cameras = self._cameras_from_summary()

    def _cameras_from_summary(self) -> list[str]:
        from mcap.reader import SeekingReader

        try:
            with open(self.path, "rb") as f:
                summary = SeekingReader(f).get_summary()
        except Exception:
            summary = None
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
        report, protobuf = self.report, _ProtobufDecoders()
        pending_meta: dict[tuple[str, int], dict[str, Any]] = {}
        pending_depth: dict[tuple[str, int], np.ndarray] = {}
        last_step = -1
        self.scan = ScanResult()
        for scanned in scan_messages(self.path, self.scan):
            topic = scanned.channel.topic
            where = f"message {scanned.index} ({topic}, byte {scanned.offset})"
            try:
                parts = fmt.split_camera_topic(topic)
                if parts is not None:
                    camera, kind = parts
                    key = (camera, scanned.message.log_time)
                    if kind == fmt.KIND_META:
                        pending_meta[key] = json.loads(scanned.message.data)
                    elif kind == fmt.KIND_DEPTH:
                        pending_depth[key] = _float_image(protobuf.decode(scanned))
                    elif kind in (fmt.KIND_COMPRESSED, fmt.KIND_RAW):
                        meta = pending_meta.pop(key, None)
                        depth = pending_depth.pop(key, None)
                        if meta is not None and meta.get("has_depth_m") and depth is None:
                            report.lost(where, "frame's registered depth is missing")
                        frame = self._frame(
                            camera, kind, meta, protobuf.decode(scanned), where, depth
                        )
                        if frame is not None:
                            report.frames += 1
                            if camera not in self.cameras:
                                self.cameras.append(camera)
                            yield RecordedFrame(frame)
                    continue
                if topic not in _JSON_TOPICS:
                    continue
                data = json.loads(scanned.message.data)
                if topic in (fmt.TOPIC_DETECTIONS, fmt.TOPIC_STEPS):
                    step = int(data["step"])
                    if step != last_step + 1:
                        report.lost(
                            where,
                            f"engine steps {last_step + 1}..{step - 1} missing "
                            "(dropped while recording or unreadable)",
                        )
                    last_step = max(last_step, step)
                if topic == fmt.TOPIC_DETECTIONS:
                    yield RecordedObservation(
                        step, float(data["time"]), fmt.result_from_dict(data["result"])
                    )
                elif topic == fmt.TOPIC_STEPS:
                    yield RecordedStep(step, float(data["time"]), str(data.get("trigger", "tick")))
                elif topic == fmt.TOPIC_STATUS:
                    error = data.get("error") or {}
                    status = data.get("status")
                    yield RecordedStatus(
                        float(data["time"]),
                        RobotStatus(**status) if status else None,
                        error.get("kind"),
                        str(error.get("message", "")),
                    )
                elif topic == fmt.TOPIC_EVENTS:
                    yield RecordedEvent(str(data["kind"]), float(data["time"]), data.get("data"))
                else:
                    yield RecordedCommand(
                        float(data["time"]),
                        command_from_dict(data["command"]),
                        str(data.get("outcome", "sent")),
                    )
            except Exception as exc:  # one damaged message loses that message only
                report.lost(where, f"unreadable: {type(exc).__name__}: {exc}")
        self._finish_report(pending_meta, last_step)

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
                self.report.lost(where, f"{msg.format or 'image'} of {len(data)} bytes does not decode")
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


# --- frame sources ---------------------------------------------------------------------------


class _End:
    pass


@dataclass(frozen=True)
class _Failed:
    error: BaseException


T = TypeVar("T")


async def read_in_thread(
    make_items: Callable[[], Iterator[T]],
    depth: int,
    stop: threading.Event,
    on_read: Callable[[T], None] | None = None,
    name: str = "replay-reader",
) -> AsyncIterator[T]:
    """Iterate a blocking iterator on a helper thread, at most `depth` items ahead.

    `on_read` runs on the helper thread for each item as it is read (e.g. to start detecting a
    frame before the pipeline asks for it). Setting `stop` ends the reading.
    """
    loop = asyncio.get_running_loop()
    ready: asyncio.Queue[Any] = asyncio.Queue()
    space = threading.Semaphore(max(1, depth))

    def hand_over(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(ready.put_nowait, item)
        except RuntimeError:  # the loop is gone: nobody is listening any more
            stop.set()

    def produce() -> None:
        try:
            for item in make_items():
                while not space.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                if on_read is not None:
                    on_read(item)
                hand_over(item)
        except BaseException as exc:  # reported to the consumer, not lost in a thread
            hand_over(_Failed(exc))
        finally:
            hand_over(_End())

    threading.Thread(target=produce, name=name, daemon=True).start()
    try:
        while True:
            item = await ready.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failed):
                raise item.error
            space.release()
            yield item
    finally:
        stop.set()


class _PrefetchingSource:
    """A `FrameSource` over a blocking frame iterator run on a helper thread, `prefetch` ahead.

    `on_read`, if set, sees each frame on the helper thread as soon as it is read.
    """

    cameras: list[str]
    report: ReadReport

    def __init__(self, prefetch: int = 4) -> None:
        self._prefetch = max(1, prefetch)
        self._stop = threading.Event()
        self.on_read: Callable[[Frame], None] | None = None

    def _iter_frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def frames(self) -> AsyncIterator[Frame]:
        return read_in_thread(
            self._iter_frames, self._prefetch, self._stop, self.on_read,
            name=f"replay-{self.report.kind}",
        )

    async def close(self) -> None:
        self._stop.set()


class McapFrameSource(_PrefetchingSource):
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


class VideoFrameSource(_PrefetchingSource):
    """Frames of a video file (anything OpenCV's FFmpeg reads: mp4, avi, mkv...).

    Frame times are `start_time + index / fps` (the file's frame rate unless `fps` is given),
    so a replay does not depend on how fast frames are decoded.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        camera: str = "video",
        fps: float | None = None,
        start_time: float = 0.0,
        prefetch: int = 4,
    ) -> None:
        super().__init__(prefetch)
        self.path = Path(path)
        if not self.path.is_file():
            raise ReplayInputError(f"{self.path}: no such file")
        probe = cv2.VideoCapture(str(self.path))
        try:
            if not probe.isOpened():
                raise ReplayInputError(f"{self.path}: not a video OpenCV can open")
            file_fps = probe.get(cv2.CAP_PROP_FPS)
            self.frame_count = int(probe.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            probe.release()
        self.cameras = [camera]
        self.camera = camera
        self.start_time = start_time
        self.report = ReadReport(str(self.path), "video")
        if fps is not None:
            self.fps = float(fps)
        elif file_fps and np.isfinite(file_fps) and file_fps > 0:
            self.fps = float(file_fps)
        else:
            self.fps = 15.0
            self.report.note(str(self.path), "video has no frame rate; assuming 15 frames/s")

    def _iter_frames(self) -> Iterator[Frame]:
        capture = cv2.VideoCapture(str(self.path))
        index = 0
        try:
            while not self._stop.is_set():
                ok, image = capture.read()
                if not ok or image is None:
                    break
                t = self.start_time + index / self.fps
                self.report.frames += 1
                yield Frame(self.camera, image, t, t, seq=index)
                index += 1
        finally:
            capture.release()
        if not self._stop.is_set() and self.frame_count > 0 and index < self.frame_count:
            self.report.lost(
                f"frame {index}",
                f"video stopped decoding at frame {index} of {self.frame_count}: "
                f"{self.frame_count - index} frames unreadable",
            )


def _natural_key(path: Path) -> list[Any]:
    """img_2.jpg before img_10.jpg."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class ImageFolderSource(_PrefetchingSource):
    """The images of a folder in natural name order, `fps` apart in time.

    JPEG files keep their bytes as `Frame.encoded`, so re-recording stores them untouched.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        camera: str = "images",
        fps: float = 10.0,
        start_time: float = 0.0,
        decode: ImageDecoder = decode_image,
        prefetch: int = 4,
    ) -> None:
        super().__init__(prefetch)
        self.path = Path(path)
        if not self.path.is_dir():
            raise ReplayInputError(f"{self.path}: not a folder")
        if fps <= 0:
            raise ReplayInputError(f"fps must be > 0, got {fps}")
        self.files = sorted(
            (p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
            key=_natural_key,
        )
        if not self.files:
            raise ReplayInputError(
                f"{self.path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        self.cameras = [camera]
        self.camera = camera
        self.fps = fps
        self.start_time = start_time
        self._decode = decode
        self.report = ReadReport(str(self.path), "images")

    def _iter_frames(self) -> Iterator[Frame]:
        for index, file in enumerate(self.files):
            if self._stop.is_set():
                return
            try:
                data = file.read_bytes()
            except OSError as exc:
                self.report.lost(file.name, f"cannot read: {exc.strerror or exc}")
                continue
            image = self._decode(data)
            if image is None:
                self.report.lost(file.name, "not a decodable 8-bit image; skipped")
                continue
            t = self.start_time + index / self.fps
            encoded = data if data.startswith(JPEG_MAGIC) else None
            self.report.frames += 1
            yield Frame(self.camera, image, t, t, encoded=encoded, seq=index, extra={"file": file.name})


ReplaySource = McapFrameSource | VideoFrameSource | ImageFolderSource


class FrameStream(Protocol):
    """What replay needs of an input: its cameras, its frames in order, what was lost, close."""

    report: ReadReport

    @property
    def cameras(self) -> list[str]: ...

    def frames(self) -> AsyncIterator[Frame]: ...

    async def close(self) -> None: ...


def open_replay_source(
    path: str | Path,
    *,
    fps: float | None = None,
    camera: str | None = None,
    decode: ImageDecoder = decode_image,
    prefetch: int = 4,
) -> ReplaySource:
    """The right source for `path`: a folder of images, an MCAP recording, or a video file.

    `prefetch`: frames read and decoded ahead of the consumer.
    """
    path = Path(path)
    if not path.exists():
        raise ReplayInputError(f"{path}: no such file or folder")
    if path.is_dir():
        return ImageFolderSource(
            path, camera=camera or "images", fps=fps or 10.0, decode=decode, prefetch=prefetch
        )
    with open(path, "rb") as f:
        head = f.read(8)
    if head == MCAP_MAGIC or path.suffix.lower() == ".mcap":
        return McapFrameSource(path, decode, prefetch=prefetch)
    return VideoFrameSource(path, camera=camera or "video", fps=fps, prefetch=prefetch)


__all__ = [
    "ImageFolderSource",
    "McapFrameSource",
    "McapRecording",
    "ReadProblem",
    "ReadReport",
    "RecordedCommand",
    "RecordedEvent",
    "RecordedFrame",
    "RecordedItem",
    "RecordedObservation",
    "RecordedStatus",
    "RecordedStep",
    "ReplayInputError",
    "ReplaySource",
    "VideoFrameSource",
    "decode_image",
    "open_replay_source",
]
