"""Recording files: MCAP segments that rotate by size and age, under a total cap, and stop
cleanly when the disk is full.

`--record run.mcap` writes `run.mcap`, then `run-001.mcap`, `run-002.mcap`... A segment closes
when it reaches `max_file_mb` or `max_file_s`; each is a complete MCAP (summary, statistics,
its own metadata) that replays on its own. When all segments together pass `max_total_mb`,
the oldest closed segments are deleted: a robot's recorder is a black box, and the minutes
before an incident matter more than the start of a shift; stopping instead would lose exactly
those. The segment being written is never deleted.

Why segments at all, besides disk use: an MCAP writer keeps one index entry per chunk in
memory until the file is closed (the summary needs them), ~2-3 kB per 256 kB chunk, about
1 MB per 100 MB recorded. One endless file is an endless memory leak; a segment bounds it
(`max_file_mb / chunk_size` entries) and closing it frees them.

Files are written with the `mcap` library to a file object this module owns, so a failed write
raises here (`OSError`: ENOSPC, EDQUOT, EFBIG) instead of being logged per message inside the
writer: the first failure becomes `SegmentsFailed` with a one-line reason, and nothing is
written after it.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import Field, model_validator

from configs.loading import StrictModel

log = logging.getLogger(__name__)

_MB = 1024 * 1024
_CAP_CHECK_BYTES = 4 * _MB  # enforce the total cap at least this often while a segment grows


class RecordingConfig(StrictModel):
    """Segments and the disk space a recording may use (`recording:` in the agent config)."""

    max_file_mb: float = Field(
        256.0, gt=0, le=1_000_000,
        description="Start a new segment when the current one reaches this size (MiB).",
    )
    max_file_s: float = Field(
        600.0, gt=0, le=86_400,
        description="Start a new segment when the current one is this old (seconds).",
    )
    max_total_mb: float = Field(
        10_240.0, gt=0, le=100_000_000,
        description="All segments of a recording together stay under this (MiB): the oldest "
        "closed segments are deleted to make room. Five cameras record about 85 MB a minute.",
    )

    @model_validator(mode="after")
    def _cap_holds_a_segment(self) -> RecordingConfig:
        if self.max_total_mb < 2 * self.max_file_mb:
            raise ValueError("max_total_mb must be at least twice max_file_mb (a full segment "
                             "plus the one being written)")
        return self


class SegmentsFailed(OSError):
    """Writing failed for good (disk full, quota, file size limit, I/O error)."""


def failure_reason(exc: OSError, path: Path) -> str:
    """One line saying why writing `path` failed, naming the condition an operator can fix."""
    what = {
        errno.ENOSPC: "disk full",
        errno.EDQUOT: "disk quota exceeded",
        errno.EFBIG: "file size limit reached",
    }.get(exc.errno or 0, "write error")
    return f"{what}: {path}: {exc.strerror or exc}"


def segment_path(first: Path, index: int) -> Path:
    """`run.mcap`, `run-001.mcap`, `run-002.mcap`, ..."""
    if index == 0:
        return first
    return first.with_name(f"{first.stem}-{index:03d}{first.suffix}")


@dataclass(frozen=True)
class SchemaSpec:
    """An MCAP schema and the encoding of its channels' messages."""

    name: str
    encoding: str  # "protobuf" or "jsonschema"
    data: bytes
    message_encoding: str  # "protobuf" or "json"

    @staticmethod
    def of_message(message: Any) -> SchemaSpec:
        """The schema of a `foxglove.messages.*` message (built once per message type)."""
        name = type(message).__name__
        spec = _PROTOBUF_SCHEMAS.get(name)
        if spec is None:
            schema = message.get_schema()
            spec = SchemaSpec(schema.name, schema.encoding, bytes(schema.data), "protobuf")
            _PROTOBUF_SCHEMAS[name] = spec
        return spec

    @staticmethod
    def of_json(schema: dict[str, Any]) -> SchemaSpec:
        """A JSON schema; its `title` names it."""
        text = json.dumps(schema, separators=(",", ":")).encode()
        return SchemaSpec(str(schema["title"]), "jsonschema", text, "json")


_PROTOBUF_SCHEMAS: dict[str, SchemaSpec] = {}


def library_name() -> str:
    """What wrote the file (the MCAP header's `library`)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"spot-cue-agent {version('spot-cue-agent')}"
    except PackageNotFoundError:
        return "spot-cue-agent"


class McapSegments:
    """The recording's files, written from one thread (the recorder's writer thread).

    `header(index)` gives the metadata records to write first in segment `index`,
    `closing(index)` those to write last (its statistics). Raises `SegmentsFailed` once writing fails; after
    that every call is a no-op.
    """

    def __init__(
        self,
        first: Path,
        limits: RecordingConfig,
        header: Callable[[int], dict[str, dict[str, str]]],
        closing: Callable[[int], dict[str, dict[str, str]]],
        chunk_size: int,
        compression: str | None,
    ) -> None:
        self.first, self.limits = first, limits
        self._header, self._closing = header, closing
        self._chunk_size, self._compression = chunk_size, compression
        self.index = -1
        self.closed: list[tuple[Path, int]] = []  # closed segments still on disk, with sizes
        self.deleted: list[str] = []
        self.failure: str | None = None
        self._file: IO[bytes] | None = None
        self._writer: Any = None
        self._opened_at = 0.0
        self._checked_at_bytes = 0
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self._sequence: dict[int, int] = {}

    @property
    def current(self) -> Path:
        return segment_path(self.first, self.index)

    @property
    def segments(self) -> list[Path]:
        """Segments on disk, oldest first (the one being written last)."""
        paths = [p for p, _ in self.closed]
        return paths + ([self.current] if self._writer is not None else [])

    def open_next(self) -> None:
        """Start the next segment. The first call raises plain `OSError` (nothing recorded yet:
        the run reports it as a setup error); later ones raise `SegmentsFailed`."""
        from mcap.writer import CompressionType, Writer

        compressions = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4,
                        None: CompressionType.NONE}
        self.index += 1
        path = self.current
        file = open(path, "xb")  # never overwrites: a name in use stops here
        try:
            writer = Writer(file, chunk_size=self._chunk_size,
                            compression=compressions[self._compression])
            writer.start(profile="", library=library_name())
            for name, data in self._header(self.index).items():
                writer.add_metadata(name, data)
        except BaseException:
            file.close()
            raise
        self._file, self._writer = file, writer
        self._opened_at = time.monotonic()
        self._checked_at_bytes = 0
        self._schemas, self._channels, self._sequence = {}, {}, {}

    def rotate_if_due(self) -> None:
        """Start the next segment if this one is full or old; keep under the total cap."""
        if self.failure is not None:
            raise SegmentsFailed(self.failure)
        try:
            self._rotate_if_due()
        except OSError as exc:
            self._fail(exc)

    def write(self, topic: str, schema: SchemaSpec, data: bytes, log_time: int) -> None:
        if self.failure is not None:
            raise SegmentsFailed(self.failure)
        try:
            assert self._writer is not None
            channel = self._channel(topic, schema)
            sequence = self._sequence[channel] = self._sequence.get(channel, -1) + 1
            self._writer.add_message(channel, log_time, data, log_time, sequence)
        except OSError as exc:
            self._fail(exc)

    def close(self) -> None:
        """Finish the segment being written (statistics, summary). Safe to call twice."""
        if self._writer is None:
            return
        try:
            self._finish_current()
        except OSError as exc:
            self._fail(exc)

    # --- internals ------------------------------------------------------------------------

    def _channel(self, topic: str, schema: SchemaSpec) -> int:
        channel = self._channels.get(topic)
        if channel is None:
            schema_id = self._schemas.get(schema.name)
            if schema_id is None:
                schema_id = self._writer.register_schema(schema.name, schema.encoding, schema.data)
                self._schemas[schema.name] = schema_id
            channel = self._writer.register_channel(topic, schema.message_encoding, schema_id)
            self._channels[topic] = channel
        return channel

    def _size(self) -> int:
        assert self._file is not None
        return self._file.tell()

    def _rotate_if_due(self) -> None:
        size = self._size()
        too_big = size >= self.limits.max_file_mb * _MB
        too_old = time.monotonic() - self._opened_at >= self.limits.max_file_s
        if (too_big or too_old) and size > 0:
            self._finish_current()
            self.open_next()
            self._enforce_cap()
        elif size - self._checked_at_bytes >= _CAP_CHECK_BYTES:
            self._checked_at_bytes = size
            self._enforce_cap()

    def _finish_current(self) -> None:
        writer, file = self._writer, self._file
        assert writer is not None and file is not None
        self._writer = self._file = None
        path = self.current
        try:
            for name, data in self._closing(self.index).items():
                writer.add_metadata(name, data)
            writer.finish()
            file.flush()
            size = file.tell()
        finally:
            file.close()
        self.closed.append((path, size))

    def _enforce_cap(self) -> None:
        """Delete the oldest closed segments while all of them together pass the cap."""
        cap = self.limits.max_total_mb * _MB
        current = self._size() if self._file is not None else 0
        while self.closed and sum(size for _, size in self.closed) + current > cap:
            oldest, _ = self.closed.pop(0)
            try:
                oldest.unlink()
            except FileNotFoundError:
                pass
            self.deleted.append(oldest.name)
            log.info("recording: deleted the oldest segment %s (cap %.0f MiB)", oldest.name,
                     self.limits.max_total_mb, extra={"event": "recording_segment_deleted"})

    def _fail(self, exc: OSError) -> None:
        """Stop for good: close the file as far as it goes, keep what is on disk."""
        path = self.current
        self.failure = failure_reason(exc, path)
        file, self._writer, self._file = self._file, None, None
        if file is not None:
            try:
                file.close()  # flushing may fail again: the disk is still full
            except OSError:
                pass
        raise SegmentsFailed(self.failure) from exc


def existing_segments(first: Path) -> list[Path]:
    """Segment files of a recording at `first` that are already on disk."""
    found = [first] if first.exists() else []
    pattern = f"{first.stem}-[0-9][0-9][0-9]*{first.suffix}"
    found += sorted(p for p in first.parent.glob(pattern) if p.stem[len(first.stem) + 1:].isdigit())
    return found


def free_space_mb(directory: Path) -> float:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize / _MB
