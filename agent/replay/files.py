"""Replay inputs that are plain files: a video, or a folder of images.

Both read what they can and report what they could not (`ReadReport`), never raise for bad
data once opened, and stamp frames with real times so a replay's recording lines up with
others in Foxglove (see each class for where the times come from).

FFmpeg (inside OpenCV) writes its decoder errors straight to the terminal. While a video is
read its log goes to `FfmpegLog` instead, and each error becomes a report entry for the frame
being read.
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from agent.replay.images import (
    IMAGE_SUFFIXES,
    JPEG_MAGIC,
    MAX_IMAGE_PIXELS,
    ImageDecoder,
    decode_image,
    image_problem,
)
from agent.replay.reading import PrefetchingSource, ReadReport, ReplayInputError
from perception.frame import Frame

MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024  # an image file larger than this is not read at all
_AV_LOG_ERROR = 16  # FFmpeg's log levels: lower is worse; warnings (24) and chatter are dropped
_LOG_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


def _loaded_libavutil() -> str | None:
    """Path of the libavutil OpenCV loaded (its wheel bundles its own), if any."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rsplit(None, 1)[-1]
                if "libavutil" in os.path.basename(path):
                    return path
    except OSError:
        pass
    return None


class FfmpegLog:
    """While entered, FFmpeg's log messages are collected here instead of printed.

    FFmpeg offers `av_log_set_callback` for exactly this; OpenCV does not expose it, so it is
    called on the libavutil OpenCV itself loaded. The callback is removed on exit (FFmpeg must
    never call into Python after the interpreter is gone). Where no libavutil can be found (an
    OpenCV built otherwise), FFmpeg is silenced through OpenCV's `OPENCV_FFMPEG_LOGLEVEL`
    instead, and decoder errors are only seen as missing frames.
    """

    _lock = threading.Lock()
    _users = 0
    _lib: Any = None
    _callback: Any = None
    _sink: ClassVar[list[str]] = []

    def __init__(self) -> None:
        self.messages: list[str] = []

    @classmethod
    def _on_log(cls, ptr: int | None, level: int, fmt: bytes | None, args: int | None) -> None:
        if level > _AV_LOG_ERROR or fmt is None:
            return
        line = ctypes.create_string_buffer(512)
        prefix = ctypes.c_int(1)
        cls._lib.av_log_format_line2(ptr, level, fmt, args, line, len(line), ctypes.byref(prefix))
        cls._sink.append(line.value.decode("utf-8", "replace").strip())

    @classmethod
    def _install(cls) -> bool:
        if cls._lib is None:
            path = _loaded_libavutil()
            if path is None:
                os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
                return False
            lib = ctypes.CDLL(path)
            lib.av_log_format_line2.argtypes = [
                ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p,
                ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
            ]
            cls._lib, cls._callback = lib, _LOG_CALLBACK(cls._on_log)
        cls._lib.av_log_set_callback(cls._callback)
        return True

    def __enter__(self) -> FfmpegLog:
        with FfmpegLog._lock:
            if FfmpegLog._users == 0:
                FfmpegLog._install()
            FfmpegLog._users += 1
        return self

    def take(self) -> list[str]:
        """The messages logged since the last call (by any reader: FFmpeg's log is global)."""
        with FfmpegLog._lock:
            taken, FfmpegLog._sink[:] = list(FfmpegLog._sink), []
        return taken

    def __exit__(self, *exc: object) -> None:
        with FfmpegLog._lock:
            FfmpegLog._users -= 1
            if FfmpegLog._users == 0 and FfmpegLog._lib is not None:
                default = ctypes.cast(FfmpegLog._lib.av_log_default_callback, ctypes.c_void_p)
                FfmpegLog._lib.av_log_set_callback(default)


def _report_ffmpeg(report: ReadReport, where: str, messages: list[str]) -> None:
    if messages:
        more = f" (and {len(messages) - 1} more decoder messages)" if len(messages) > 1 else ""
        report.lost(where, f"damaged: FFmpeg: {messages[0]}{more}")


class VideoFrameSource(PrefetchingSource):
    """Frames of a video file (anything OpenCV's FFmpeg reads: mp4, avi, mkv...).

    Frame times are `start_time + index / fps` (the file's frame rate unless `fps` is given), so
    a replay does not depend on how fast frames are decoded. `start_time` defaults to when the
    video began: the file's modification time (when the camera finished writing it) minus its
    duration. Decoder errors, a frame size over `MAX_IMAGE_PIXELS`, and a frame count that
    does not match the container's are reported.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        camera: str = "video",
        fps: float | None = None,
        start_time: float | None = None,
        prefetch: int = 4,
    ) -> None:
        super().__init__(prefetch)
        self.path = Path(path)
        if not self.path.is_file():
            raise ReplayInputError(f"{self.path}: no such file")
        self.report = ReadReport(str(self.path), "video")
        with FfmpegLog() as log:
            probe = cv2.VideoCapture(str(self.path))
            try:
                if not probe.isOpened():
                    raise ReplayInputError(f"{self.path}: not a video OpenCV can open")
                file_fps = probe.get(cv2.CAP_PROP_FPS)
                self.frame_count = int(probe.get(cv2.CAP_PROP_FRAME_COUNT))
                width, height = (int(probe.get(p)) for p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT))
            finally:
                probe.release()
            _report_ffmpeg(self.report, "opening", log.take())
        if width * height > MAX_IMAGE_PIXELS:
            raise ReplayInputError(f"{self.path}: frames too large: {width}x{height} "
                                   f"(over {MAX_IMAGE_PIXELS // 1_000_000} megapixels)")
        self.cameras = [camera]
        self.camera = camera
        if fps is not None:
            self.fps = float(fps)
        elif file_fps and np.isfinite(file_fps) and file_fps > 0:
            self.fps = float(file_fps)
        else:
            self.fps = 15.0
            self.report.note(str(self.path), "video has no frame rate; assuming 15 frames/s")
        if start_time is None:
            start_time = self.path.stat().st_mtime - max(0, self.frame_count) / self.fps
        self.start_time = start_time

    def _iter_frames(self) -> Iterator[Frame]:
        index = 0
        with FfmpegLog() as log:
            capture = cv2.VideoCapture(str(self.path))
            try:
                while not self._stop.is_set():
                    ok, image = capture.read()
                    _report_ffmpeg(self.report, f"frame {index}", log.take())
                    if not ok or image is None:
                        break
                    t = self.start_time + index / self.fps
                    self.report.frames += 1
                    yield Frame(self.camera, image, t, t, seq=index)
                    index += 1
            finally:
                capture.release()
        if not self._stop.is_set() and self.frame_count > 0 and index != self.frame_count:
            what = (f"{self.frame_count - index} frames unreadable" if index < self.frame_count
                    else f"{index - self.frame_count} more than it lists")
            self.report.lost(f"frame {index}", f"the video lists {self.frame_count} frames, "
                                               f"{index} decoded: {what}")


def _natural_key(path: Path) -> list[Any]:
    """img_2.jpg before img_10.jpg."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


# A date and time in a file name: 20240131_142501, 2024-01-31T14-25-01, 2024-01-31 14.25.01 ...
_NAME_TIME = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})[T_ -]?(\d{2})[-_.:]?(\d{2})[-_.:]?(\d{2})")


def time_of_image_file(path: Path) -> tuple[float, str]:
    """When an image was taken, and how that is known: a date-time in its file name (local
    time, as cameras name files), else the file's modification time."""
    for match in _NAME_TIME.finditer(path.stem):
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
        if 1990 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31 and hour < 24 \
                and minute < 60 and second < 61:
            stamp = time.mktime((year, month, day, hour, minute, second, 0, 0, -1))
            return stamp, "the time in its file name"
    return path.stat().st_mtime, "its modification time"


class ImageFolderSource(PrefetchingSource):
    """The images of a folder in natural name order, `fps` apart in time.

    The first image's time is when it was taken (`time_of_image_file`: a date-time in its file
    name, else its modification time; `start_time` overrides it); the others follow `1/fps`
    apart, so a replay depends on the images and `fps` only. JPEG files keep their bytes as
    `Frame.encoded`, so re-recording stores them untouched. Files that are empty, not images,
    or too large to decode safely (`image_problem`) are skipped and reported.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        camera: str = "images",
        fps: float = 10.0,
        start_time: float | None = None,
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
        self.report = ReadReport(str(self.path), "images")
        if start_time is None:
            start_time, how = time_of_image_file(self.files[0])
            self.report.note(self.files[0].name, f"frame times start at {how}, 1/{fps:g} s apart")
        self.start_time = start_time
        self._decode = decode

    def _iter_frames(self) -> Iterator[Frame]:
        for index, file in enumerate(self.files):
            if self._stop.is_set():
                return
            try:
                size = file.stat().st_size
                if size > MAX_IMAGE_FILE_BYTES:
                    self.report.lost(file.name, f"file of {size} bytes is too large for an image; skipped")
                    continue
                data = file.read_bytes()
            except OSError as exc:
                self.report.lost(file.name, f"cannot read: {exc.strerror or exc}")
                continue
            problem = image_problem(data)
            image = self._decode(data) if problem is None else None
            if image is None:
                self.report.lost(file.name, f"{problem or 'not a decodable 8-bit image'}; skipped")
                continue
            t = self.start_time + index / self.fps
            encoded = data if data.startswith(JPEG_MAGIC) else None
            self.report.frames += 1
            yield Frame(self.camera, image, t, t, encoded=encoded, seq=index, extra={"file": file.name})
