"""Read every readable message of an MCAP file, even a truncated or damaged one.

`mcap`'s readers either need the summary at the end of the file (gone when the recorder was
killed) or stop at the first damaged byte. This reader walks the data section record by record
with `mcap`'s own record parsers and:
- reads a file that ends early up to its last complete record, and recovers the complete
  messages at the start of a chunk that was cut off (streaming decompression);
- skips a chunk whose CRC or compression is damaged and goes on with the next record;
- when the record framing itself is damaged, jumps to the next chunk listed in the file's
  summary (if the summary survived) instead of giving up;
and reports each loss with its byte offset, so the caller can say what was lost and where.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from mcap.data_stream import ReadDataStream
from mcap.opcode import Opcode
from mcap.records import Channel, Chunk, Message, Metadata, Schema, Statistics

MCAP_MAGIC = b"\x89MCAP0\r\n"
_KNOWN_OPCODES = {int(op) for op in Opcode}
_DATA_OPCODES = (Opcode.MESSAGE, Opcode.SCHEMA, Opcode.CHANNEL)  # inside and outside chunks


class NotAnMcapFile(ValueError):
    """The file is not an MCAP recording at all (wrong magic bytes, empty)."""


@dataclass(frozen=True)
class Loss:
    """Something that could not be read, and where."""

    offset: int  # byte offset in the file
    what: str


@dataclass(frozen=True)
class ScannedMessage:
    channel: Channel
    schema: Schema | None
    message: Message
    offset: int  # byte offset of the record (or of its chunk) holding the message
    index: int  # position among all messages read, from 0


@dataclass
class ScanResult:
    """Filled in while `scan_messages` runs."""

    file_size: int = 0
    messages: int = 0
    chunks: int = 0
    complete: bool = False  # the footer was reached
    losses: list[Loss] = field(default_factory=list)
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    statistics: Statistics | None = None


def _decompress(compression: str, data: bytes, uncompressed_size: int, partial: bool) -> bytes:
    """Decompress a chunk's records. `partial`: the input was cut off; return what decodes."""
    if compression == "":
        return data
    if compression == "zstd":
        import zstandard

        if partial:
            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=uncompressed_size)
    if compression == "lz4":
        import lz4.frame

        if partial:
            return lz4.frame.LZ4FrameDecompressor().decompress(data)
        return lz4.frame.decompress(data)
    raise ValueError(f"unsupported chunk compression {compression!r}")


def _parse_partial_chunk(body: bytes) -> tuple[str, bytes]:
    """Compression and (partial) records bytes of a chunk record cut short."""
    # message_start_time, message_end_time, uncompressed_size (u64), uncompressed_crc (u32)
    fixed = struct.calcsize("<QQQI")
    if len(body) < fixed + 4:
        raise ValueError("chunk header cut off")
    (name_len,) = struct.unpack_from("<I", body, fixed)
    start = fixed + 4
    compression = body[start : start + name_len].decode("utf-8")
    records_at = start + name_len + 8  # + u64 records length
    if len(body) < records_at:
        raise ValueError("chunk header cut off")
    return compression, body[records_at:]


class _Scanner:
    def __init__(self, f: BinaryIO, result: ScanResult, chunk_offsets: list[int]) -> None:
        self.f = f
        self.result = result
        self.chunk_offsets = chunk_offsets
        self.schemas: dict[int, Schema] = {}
        self.channels: dict[int, Channel] = {}

    def lose(self, offset: int, what: str) -> None:
        self.result.losses.append(Loss(offset, what))

    def message(self, record: Message, offset: int) -> Iterator[ScannedMessage]:
        channel = self.channels.get(record.channel_id)
        if channel is None:
            self.lose(offset, f"message on unknown channel id {record.channel_id}")
            return
        index = self.result.messages
        self.result.messages += 1
        yield ScannedMessage(channel, self.schemas.get(channel.schema_id), record, offset, index)

    def data_record(
        self, opcode: int, stream: ReadDataStream, length: int, offset: int
    ) -> Iterator[ScannedMessage]:
        """A message, schema or channel record: the kinds found both inside and outside chunks."""
        if opcode == Opcode.MESSAGE:
            yield from self.message(Message.read(stream, length), offset)
        elif opcode == Opcode.SCHEMA:
            schema = Schema.read(stream)
            self.schemas[schema.id] = schema
        elif opcode == Opcode.CHANNEL:
            channel = Channel.read(stream)
            self.channels[channel.id] = channel

    def inner_records(self, data: bytes, offset: int, cut: bool) -> Iterator[ScannedMessage]:
        """Records inside a chunk; `cut`: the chunk was truncated, stop quietly at its end."""
        pos, end = 0, len(data)
        while pos < end:
            if end - pos < 9:
                break
            opcode, length = struct.unpack_from("<BQ", data, pos)
            if pos + 9 + length > end:
                break
            body = data[pos + 9 : pos + 9 + length]
            pos += 9 + length
            try:
                yield from self.data_record(opcode, ReadDataStream(io.BytesIO(body)), length, offset)
            except Exception as exc:
                self.lose(offset, f"damaged record (opcode {opcode:#x}) inside chunk: {exc}")
        if pos < end and not cut:
            self.lose(offset, f"{end - pos} bytes of damaged records at the end of a chunk")

    def chunk(self, body: bytes, offset: int) -> Iterator[ScannedMessage]:
        self.result.chunks += 1
        try:
            chunk = Chunk.read(ReadDataStream(io.BytesIO(body)))
            data = _decompress(chunk.compression, chunk.data, chunk.uncompressed_size, False)
        except Exception as exc:
            self.lose(offset, f"chunk of {len(body)} bytes cannot be decompressed ({exc}); skipped")
            return
        if chunk.uncompressed_crc and zlib.crc32(data) != chunk.uncompressed_crc:
            self.lose(offset, f"chunk of {len(body)} bytes fails its CRC check; skipped")
            return
        yield from self.inner_records(data, offset, cut=False)

    def truncated_chunk(self, body: bytes, offset: int, expected: int) -> Iterator[ScannedMessage]:
        before = self.result.messages
        try:
            compression, records = _parse_partial_chunk(body)
            data = _decompress(compression, records, 0, partial=True)
        except Exception as exc:
            self.lose(offset, f"file ends inside a chunk ({len(body)} of {expected} bytes): {exc}")
            return
        yield from self.inner_records(data, offset, cut=True)
        self.lose(
            offset,
            f"file ends inside a chunk ({len(body)} of {expected} bytes); recovered "
            f"{self.result.messages - before} messages from it, the rest of the chunk is lost",
        )

    def resync(self, offset: int) -> int | None:
        """The next chunk start after `offset`, from the summary, if the summary survived."""
        later = [o for o in self.chunk_offsets if o > offset]
        return min(later) if later else None

    def run(self) -> Iterator[ScannedMessage]:
        f, size = self.f, self.result.file_size
        pos = len(MCAP_MAGIC)
        while True:
            f.seek(pos)
            head = f.read(9)
            if not head:
                self.lose(pos, "file ends without a footer (recording was not closed)")
                return
            if len(head) < 9:
                self.lose(pos, f"file ends inside a record header ({len(head)} of 9 bytes)")
                return
            opcode, length = struct.unpack("<BQ", head)
            if opcode not in _KNOWN_OPCODES and opcode < 0x80:
                target = self.resync(pos)
                if target is None:
                    self.lose(pos, f"unreadable data from here on (bad record opcode {opcode:#x})")
                    return
                self.lose(pos, f"bytes {pos}..{target} unreadable (bad record opcode {opcode:#x})")
                pos = target
                continue
            available = size - pos - 9
            if length > available:
                body = f.read(available)
                if opcode == Opcode.CHUNK:
                    yield from self.truncated_chunk(body, pos, length)
                else:
                    self.lose(
                        pos,
                        f"file ends inside a {Opcode(opcode).name.lower()} record "
                        f"({available} of {length} bytes)",
                    )
                return
            body = f.read(length)
            record_at, pos = pos, pos + 9 + length
            try:
                stream = ReadDataStream(io.BytesIO(body))
                if opcode == Opcode.CHUNK:
                    yield from self.chunk(body, record_at)
                elif opcode in _DATA_OPCODES:
                    yield from self.data_record(opcode, stream, length, record_at)
                elif opcode == Opcode.METADATA:
                    metadata = Metadata.read(stream)
                    self.result.metadata[metadata.name] = dict(metadata.metadata)
                elif opcode == Opcode.STATISTICS:
                    self.result.statistics = Statistics.read(stream)
                elif opcode == Opcode.FOOTER:
                    self.result.complete = True
                    return
            except Exception as exc:
                self.lose(record_at, f"damaged {Opcode(opcode).name.lower()} record: {exc}")


def _summary_chunk_offsets(f: BinaryIO) -> list[int]:
    """Chunk start offsets from the summary section, or [] if it is missing or damaged."""
    try:
        from mcap.reader import SeekingReader

        f.seek(0)
        summary = SeekingReader(f).get_summary()
    except Exception:
        return []
    if summary is None:
        return []
    return sorted(ci.chunk_start_offset for ci in summary.chunk_indexes)


def check_magic(path: Path) -> None:
    """Raise `NotAnMcapFile` unless `path` starts with the MCAP magic bytes."""
    with open(path, "rb") as f:
        head = f.read(len(MCAP_MAGIC))
    if not head:
        raise NotAnMcapFile(f"{path}: empty file")
    if head != MCAP_MAGIC:
        raise NotAnMcapFile(f"{path}: not an MCAP file (starts with {head!r})")


def scan_messages(path: str | Path, result: ScanResult | None = None) -> Iterator[ScannedMessage]:
    """Every readable message of the MCAP file at `path`, in file order.

    Raises `NotAnMcapFile` up front; after that it never raises for bad data: losses are
    appended to `result.losses` as they are found.
    """
    path = Path(path)
    check_magic(path)
    result = result if result is not None else ScanResult()
    with open(path, "rb") as f:
        result.file_size = f.seek(0, io.SEEK_END)
        offsets = _summary_chunk_offsets(f)
        yield from _Scanner(f, result, offsets).run()
