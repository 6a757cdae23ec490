"""Read every readable message of an MCAP file, even a truncated or damaged one.

`mcap`'s readers either need the summary at the end of the file (gone when the recorder was
killed) or stop at the first damaged byte. This reader walks the data section record by record
with `mcap`'s own record parsers, and uses the summary section when it survived (checked by its
CRC and by every chunk it indexes being where it says):
- the summary's schemas and channels are known from the start, so a damaged chunk that held
  the only copy of a channel record loses that chunk's messages, not every later message;
- the chunk index is a map of the file: a chunk is read at its indexed offset and length even
  when its record header is damaged, and damaged framing (a bad opcode, a length running past
  the next chunk) resumes at the next indexed chunk instead of giving up;
- a file that ends early is read up to its last complete record, and the complete messages at
  the start of a chunk that was cut off are recovered (streaming decompression);
- a chunk whose CRC or compression is damaged is skipped; the walk goes on;
- whatever follows the recording's end (trailing bytes, a second recording appended with
  `cat`) is reported, not silently ignored.
Each loss is reported with its byte offset. Nothing here raises for bad data once the magic
bytes matched, and every loop moves forward through the file, so no input can make it hang;
memory is bounded by the largest chunk (chunks claiming more than `MAX_CHUNK_BYTES` are skipped).
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
MAX_CHUNK_BYTES = 256 * 1024 * 1024  # a chunk's records, uncompressed (the recorder writes 256 kB)
_KNOWN_OPCODES = {int(op) for op in Opcode}
_DATA_OPCODES = (Opcode.MESSAGE, Opcode.SCHEMA, Opcode.CHANNEL)  # inside and outside chunks
_FOOTER_SIZE = 1 + 8 + 8 + 8 + 4  # opcode, length, summary_start, summary_offset_start, crc
_HEADER = struct.Struct("<BQ")


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
class FileSummary:
    """What an intact summary section says about the file."""

    schemas: dict[int, Schema]
    channels: dict[int, Channel]
    chunks: dict[int, int]  # chunk record offset -> record length (without its 9-byte header)
    statistics: Statistics | None


@dataclass
class ScanResult:
    """Filled in while `scan_messages` runs."""

    file_size: int = 0
    messages: int = 0
    chunks: int = 0
    complete: bool = False  # the footer was reached and nothing follows the recording
    losses: list[Loss] = field(default_factory=list)
    metadata: dict[str, dict[str, str]] = field(default_factory=dict)
    statistics: Statistics | None = None
    summary: FileSummary | None = None  # the summary section, when it survived
    channels: dict[int, Channel] = field(default_factory=dict)  # every channel seen


def opcode_name(opcode: int) -> str:
    """A record kind for messages: its name, or its number for opcodes MCAP does not define."""
    return Opcode(opcode).name.lower() if opcode in _KNOWN_OPCODES else f"opcode {opcode:#x}"


def _decompress(compression: str, data: bytes, uncompressed_size: int, partial: bool) -> bytes:
    """Decompress a chunk's records. `partial`: the input was cut off; return what decodes."""
    if compression == "":
        return data
    if compression == "zstd":
        import zstandard

        if partial:
            return zstandard.ZstdDecompressor().decompressobj().decompress(data)[:MAX_CHUNK_BYTES]
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=uncompressed_size)
    if compression == "lz4":
        import lz4.frame

        if partial:
            return lz4.frame.LZ4FrameDecompressor().decompress(data, max_length=MAX_CHUNK_BYTES)
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


def read_summary(f: BinaryIO, file_size: int) -> tuple[FileSummary | None, str]:
    """The file's summary section if it is intact (CRC, and each indexed chunk where the index
    says), else None and why not ("" when the file simply has none, e.g. it was cut short)."""
    from mcap.reader import SeekingReader

    if file_size < 2 * len(MCAP_MAGIC) + _FOOTER_SIZE:
        return None, ""
    f.seek(file_size - len(MCAP_MAGIC))
    if f.read(len(MCAP_MAGIC)) != MCAP_MAGIC:
        return None, ""  # no end magic: not closed (cut short or still being written)
    try:
        f.seek(0)
        summary = SeekingReader(f, record_size_limit=file_size).get_summary()
    except Exception as exc:
        return None, f"the summary section is damaged ({type(exc).__name__}); reading without it"
    if summary is None:
        return None, ""
    f.seek(file_size - len(MCAP_MAGIC) - _FOOTER_SIZE + 9)
    summary_start, _, summary_crc = struct.unpack("<QQI", f.read(20))
    if summary_crc:
        f.seek(summary_start)
        covered = f.read(file_size - len(MCAP_MAGIC) - 4 - summary_start)
        if zlib.crc32(covered) != summary_crc:
            return None, "the summary section fails its CRC check; reading without it"
    chunks = {ci.chunk_start_offset: ci.chunk_length - 9 for ci in summary.chunk_indexes}
    found = 0
    for offset, length in chunks.items():
        f.seek(offset)
        head = f.read(9)
        found += len(head) == 9 and _HEADER.unpack(head) == (Opcode.CHUNK, length)
    if 2 * found < len(chunks):
        # A summary of another file (e.g. of a second recording appended to this one: its
        # offsets count from its own start); a damaged chunk header or two are read anyway.
        return None, "the summary's chunk index does not match the file; reading without it"
    return FileSummary(dict(summary.schemas), dict(summary.channels), chunks, summary.statistics), ""


class _Scanner:
    def __init__(self, f: BinaryIO, result: ScanResult) -> None:
        self.f = f
        self.result = result
        summary = result.summary
        self.schemas: dict[int, Schema] = dict(summary.schemas) if summary else {}
        self.channels: dict[int, Channel] = result.channels
        self.channels.update(summary.channels if summary else {})
        self.chunk_at: dict[int, int] = dict(summary.chunks) if summary else {}
        self.chunk_offsets = sorted(self.chunk_at)

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
            self.schemas.setdefault(schema.id, schema)  # the summary's copy wins: CRC-checked
        elif opcode == Opcode.CHANNEL:
            channel = Channel.read(stream)
            self.channels.setdefault(channel.id, channel)

    def inner_records(self, data: bytes, offset: int, cut: bool) -> Iterator[ScannedMessage]:
        """Records inside a chunk; `cut`: the chunk was truncated, stop quietly at its end."""
        pos, end = 0, len(data)
        while pos < end:
            if end - pos < 9:
                break
            opcode, length = _HEADER.unpack_from(data, pos)
            if pos + 9 + length > end:
                break
            body = data[pos + 9 : pos + 9 + length]
            pos += 9 + length
            try:
                yield from self.data_record(opcode, ReadDataStream(io.BytesIO(body)), length, offset)
            except Exception as exc:
                self.lose(offset, f"damaged record ({opcode_name(opcode)}) inside chunk: {exc}")
        if pos < end and not cut:
            self.lose(offset, f"{end - pos} bytes of damaged records at the end of a chunk")

    def chunk(self, body: bytes, offset: int) -> Iterator[ScannedMessage]:
        self.result.chunks += 1
        try:
            chunk = Chunk.read(ReadDataStream(io.BytesIO(body)))
            if chunk.uncompressed_size > MAX_CHUNK_BYTES:
                raise ValueError(f"claims {chunk.uncompressed_size} bytes uncompressed")
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

    def next_chunk(self, offset: int) -> int | None:
        """The first indexed chunk after `offset` (None without a summary or after the last)."""
        import bisect

        i = bisect.bisect_right(self.chunk_offsets, offset)
        return self.chunk_offsets[i] if i < len(self.chunk_offsets) else None

    def resync(self, pos: int, why: str) -> int | None:
        """Where to go on after damaged framing at `pos`: the next indexed chunk, if any."""
        target = self.next_chunk(pos)
        if target is None:
            self.lose(pos, f"unreadable data from here on ({why})")
        else:
            self.lose(pos, f"bytes {pos}..{target} unreadable ({why})")
        return target

    def header_at(self, pos: int) -> tuple[int, int] | None:
        """(opcode, length) of the record at `pos`; the chunk index's word for indexed chunks."""
        self.f.seek(pos)
        head = self.f.read(9)
        indexed = self.chunk_at.get(pos)
        if indexed is not None:
            if len(head) < 9 or _HEADER.unpack(head) != (Opcode.CHUNK, indexed):
                self.lose(pos, "damaged chunk header; read at the chunk index's offset and length")
            return Opcode.CHUNK, indexed
        if not head:
            self.lose(pos, "file ends without a footer (recording was not closed)")
            return None
        if len(head) < 9:
            self.lose(pos, f"file ends inside a record header ({len(head)} of 9 bytes)")
            return None
        opcode, length = _HEADER.unpack(head)
        return opcode, length

    def run(self) -> Iterator[ScannedMessage]:
        size, pos = self.result.file_size, len(MCAP_MAGIC)
        while True:
            header = self.header_at(pos)
            if header is None:
                return
            opcode, length = header
            end = pos + 9 + length
            following = self.next_chunk(pos)
            if opcode not in _KNOWN_OPCODES and opcode < 0x80:
                why = f"bad record opcode {opcode:#x}"
            elif following is not None and end > following:
                why = f"a {opcode_name(opcode)} record's length runs into the next chunk"
            else:
                why = ""
            if why:
                target = self.resync(pos, why)
                if target is None:
                    return
                pos = target
                continue
            if end > size:
                yield from self.cut_short(opcode, pos, length)
                return
            self.f.seek(pos + 9)
            body = self.f.read(length)
            try:
                if opcode == Opcode.FOOTER:
                    self.result.complete = self.check_end(end)
                    return
                yield from self.record(opcode, body, pos)
            except Exception as exc:
                self.lose(pos, f"damaged {opcode_name(opcode)} record: {exc}")
            pos = end

    def record(self, opcode: int, body: bytes, pos: int) -> Iterator[ScannedMessage]:
        stream = ReadDataStream(io.BytesIO(body))
        if opcode == Opcode.CHUNK:
            yield from self.chunk(body, pos)
        elif opcode in _DATA_OPCODES:
            yield from self.data_record(opcode, stream, len(body), pos)
        elif opcode == Opcode.METADATA:
            metadata = Metadata.read(stream)
            self.result.metadata.setdefault(metadata.name, dict(metadata.metadata))
        elif opcode == Opcode.STATISTICS and self.result.statistics is None:
            self.result.statistics = Statistics.read(stream)

    def cut_short(self, opcode: int, pos: int, length: int) -> Iterator[ScannedMessage]:
        available = self.result.file_size - pos - 9
        self.f.seek(pos + 9)
        if opcode == Opcode.CHUNK:
            yield from self.truncated_chunk(self.f.read(min(available, MAX_CHUNK_BYTES)), pos, length)
        else:
            self.lose(pos, f"file ends inside a {opcode_name(opcode)} record ({available} of {length} bytes)")

    def check_end(self, footer_end: int) -> bool:
        """True if the recording ends at the file's end; else say what follows it."""
        size = self.result.file_size
        self.f.seek(footer_end)
        tail = self.f.read(2 * len(MCAP_MAGIC))
        if tail[: len(MCAP_MAGIC)] != MCAP_MAGIC:
            self.lose(footer_end, "the closing magic bytes after the footer are missing or damaged")
            return False
        after = footer_end + len(MCAP_MAGIC)
        if after == size:
            return True
        if tail[len(MCAP_MAGIC) :] == MCAP_MAGIC:
            self.lose(after, f"a second recording ({size - after} bytes) follows the end of the first "
                             "(files joined together?); it is not read: split it off and replay it "
                             "on its own")
        else:
            self.lose(after, f"{size - after} bytes follow the end of the recording; not read")
        return False


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
        result.summary, why = read_summary(f, result.file_size)
        if why:
            result.losses.append(Loss(result.file_size, why))
        if result.summary is not None:
            result.statistics = result.summary.statistics
        yield from _Scanner(f, result).run()
