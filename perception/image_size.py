"""Width and height of an encoded image, read from its header without decoding it.

A 40000x40000 PNG of zeros is a few megabytes on disk and 4.8 GB decoded; a JPEG header may
claim 65000x65000 in a few hundred bytes. So the size is read first and checked against a
pixel limit (`perception.decode.check_pixels`) before any decoder allocates. Covers the formats
the agent and `spot-agent detect` read: JPEG, PNG, BMP, WebP, GIF, TIFF and PNM/PFM. Plain byte
parsing on purpose: no decoder is involved, so nothing here can allocate more than the input.
"""

from __future__ import annotations

import re
import struct

Size = tuple[int, int]  # (width, height) in pixels

MAX_IMAGE_PIXELS = 50_000_000
"""Largest image decoded from outside, in pixels (width x height): 50 MP, more than any camera
Spot carries (body cameras 0.3 MP, Spot CAM PTZ about 2 MP) or a photo needs, while a decoded
BGR image stays at 150 MB (the CORE I/O container has 1 GB). Callers may pass their own."""

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PNM_TOKEN = re.compile(rb"#[^\r\n]*|[^\s#]+")
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD9)}  # TEM, RSTn, SOI: no length field


def image_header_size(data: bytes) -> Size | None:
    """(width, height) from the header of a JPEG, PNG, BMP, WebP, GIF, TIFF or PNM/PFM image;
    None when `data` is none of these or its header is cut short or names no size."""
    head = bytes(data[:16])
    if head.startswith(b"\xff\xd8"):
        size = _jpeg(data)
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        size = _unpack(">II", data, 16) if data[12:16] == b"IHDR" else None
    elif head.startswith(b"BM"):
        size = _bmp(data)
    elif head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        size = _webp(data)
    elif head.startswith((b"GIF87a", b"GIF89a")):
        size = _unpack("<HH", data, 6)
    elif head.startswith((b"II*\x00", b"MM\x00*")):
        size = _tiff(data)
    elif len(head) > 2 and head[0:1] == b"P" and head[1:2] in b"123456Ff" and head[2:3].isspace():
        size = _pnm(data)
    else:
        size = None
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return size


def _unpack(fmt: str, data: bytes, offset: int) -> Size | None:
    try:
        width, height = struct.unpack_from(fmt, data, offset)
    except struct.error:  # cut short
        return None
    return int(width), int(height)


def _jpeg(data: bytes) -> Size | None:
    """The frame header (SOFn) holds the size; walk the marker segments up to it."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        if marker in _JPEG_SOF:
            size = _unpack(">HH", data, i + 5)  # length(2) precision(1) height(2) width(2)
            return (size[1], size[0]) if size is not None else None
        (length,) = struct.unpack_from(">H", data, i + 2)
        i += 2 + length
    return None


def _bmp(data: bytes) -> Size | None:
    if len(data) < 18:
        return None
    (header_size,) = struct.unpack_from("<I", data, 14)
    if header_size == 12:  # BITMAPCOREHEADER: 16-bit sizes
        return _unpack("<HH", data, 18)
    size = _unpack("<ii", data, 18)
    return (size[0], abs(size[1])) if size is not None else None  # negative height: top-down


def _webp(data: bytes) -> Size | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # lossy: key frame start code
        size = _unpack("<HH", data, 26)
        return (size[0] & 0x3FFF, size[1] & 0x3FFF) if size is not None else None
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:  # lossless
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:  # extended: the canvas size
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def _tiff(data: bytes) -> Size | None:
    """ImageWidth (256) and ImageLength (257) of the first image file directory."""
    order = "<" if data[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(order + "I", data, 4)
        (count,) = struct.unpack_from(order + "H", data, ifd)
        found: dict[int, int] = {}
        for n in range(min(count, 1000)):
            tag, kind, _ = struct.unpack_from(order + "HHI", data, ifd + 2 + 12 * n)
            if tag in (256, 257):
                fmt = order + ("H" if kind == 3 else "I")  # SHORT or LONG
                (found[tag],) = struct.unpack_from(fmt, data, ifd + 2 + 12 * n + 8)
    except struct.error:
        return None
    if 256 not in found or 257 not in found:
        return None
    return found[256], found[257]


def _pnm(data: bytes) -> Size | None:
    """P1-P6 / PF / Pf: magic, then width and height as text, with `#` comments allowed. A
    number that ends the data may be cut short, so it does not count."""
    head = bytes(data[:1024])
    tokens: list[bytes] = []
    for match in _PNM_TOKEN.finditer(head):
        if match.group().startswith(b"#"):
            continue
        if match.end() == len(head) or len(tokens) == 3:
            break
        tokens.append(match.group())
    if len(tokens) < 3 or not (tokens[1].isdigit() and tokens[2].isdigit()):
        return None
    return int(tokens[1]), int(tokens[2])
