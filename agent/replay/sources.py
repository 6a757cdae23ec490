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
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np

from agent.recording.salvage import (
    MCAP_MAGIC,
)
from perception.decode import FrameDecodeError, check_pixels
from perception.frame import Frame
from perception.image_size import image_header_size

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


# Decoded pixels allowed per image in replay: 4096 x 4096 is 48 MB as BGR, and replay holds a few
# frames ahead per detector, so it is stricter than the agent's own `MAX_IMAGE_PIXELS` (50 MP).
# The size is read from the header, before any decoding, by perception's one header reader.
MAX_IMAGE_PIXELS = 4096 * 4096


def image_problem(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> str | None:
    """Why these image bytes must not be decoded (empty, unreadable header, too large), or None."""
    if not data:
        return "empty file"
    size = image_header_size(data)
    if size is None:
        return "not a decodable image (no readable PNG/JPEG/BMP/WebP/GIF/TIFF/PNM header)"
    try:
        check_pixels(*size, max_pixels=max_pixels)
    except FrameDecodeError as exc:
        return f"too large: {exc.detail}; not decoded"
    return None


def _imdecode(data: bytes, flag: int) -> np.ndarray | None:
    """cv2.imdecode that never raises (empty or damaged input -> None)."""
    if not data:
        return None
    try:
        return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flag)
    except cv2.error:
        return None


def decode_image(data: bytes) -> np.ndarray | None:
    """JPEG / PNG bytes -> grey (H x W) or BGR (H x W x 3) uint8 as stored; None if unusable.

    Images whose header is unreadable or too large (`image_problem`) are not decoded at all."""
    if image_problem(data) is not None:
        return None
    image = _imdecode(data, cv2.IMREAD_UNCHANGED)
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
    if image_problem(data, MAX_IMAGE_PIXELS * factor * factor) is not None:
        return None
    image = _imdecode(data, flag)
    return image if image is not None and image.dtype == np.uint8 else None


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
    report: ReadReport | None = None,
) -> AsyncIterator[T]:
    """Iterate a blocking iterator on a helper thread, at most `depth` items ahead.

    `on_read` runs on the helper thread for each item as it is read (e.g. to start detecting a
    frame before the pipeline asks for it). Setting `stop` ends the reading. With a `report`,
    an error the reader did not expect ends the input and is reported as a loss there instead
    of being raised into the consumer (a pipeline whose source raises would wait forever).
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
        except Exception as exc:
            if report is None:
                hand_over(_Failed(exc))  # reported to the consumer, not lost in a thread
            else:
                report.lost("input", f"reading stopped: {type(exc).__name__}: {exc}")
        except BaseException as exc:
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
            name=f"replay-{self.report.kind}", report=self.report,
        )

    async def close(self) -> None:
        self._stop.set()


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
) -> Any:
    """The right source for `path`: a folder of images, an MCAP recording, or a video file.

    `prefetch`: frames read and decoded ahead of the consumer.
    """
    from agent.replay.files import ImageFolderSource, VideoFrameSource

    path = Path(path)
    if not path.exists():
        raise ReplayInputError(f"{path}: no such file or folder")
    if path.is_dir():
        return ImageFolderSource(
            path, camera=camera or "images", fps=fps or 10.0, decode=decode, prefetch=prefetch
        )
    if not path.is_file():  # a FIFO, socket or device: opening it could block forever
        raise ReplayInputError(f"{path}: not a regular file (a pipe or a device cannot be replayed)")
    with open(path, "rb") as f:
        head = f.read(8)
    if head == MCAP_MAGIC or path.suffix.lower() == ".mcap":
        from agent.replay.mcap import McapFrameSource

        return McapFrameSource(path, decode, prefetch=prefetch)
    return VideoFrameSource(path, camera=camera or "video", fps=fps, prefetch=prefetch)


_MOVED = {  # readers with a module of their own, still importable from here
    **dict.fromkeys(
        ["McapRecording", "McapFrameSource", "RecordedCommand", "RecordedEvent", "RecordedFrame",
         "RecordedItem", "RecordedObservation", "RecordedStatus", "RecordedStep"],
        "agent.replay.mcap",
    ),
    **dict.fromkeys(["ImageFolderSource", "VideoFrameSource"], "agent.replay.files"),
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
