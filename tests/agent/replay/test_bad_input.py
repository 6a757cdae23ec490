"""Replay on bad input: every loss reported truthfully, no traceback, no hang, bounded memory.

Real files throughout: recordings written by the `Recorder`, videos by OpenCV's FFmpeg, images
by OpenCV's encoders; the damage is done to their bytes as a disk, a copy or a user would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcap.reader import make_reader
from skimage import data as skdata
from support.cli import command_app
from typer.testing import CliRunner

from agent.fleet.command import replay_command
from agent.recording.metadata import recording_header
from agent.recording.writer import Recorder
from agent.replay.files import VideoFrameSource
from agent.replay.images import image_problem
from agent.replay.mcap import McapRecording
from agent.replay.reading import ReplayInputError
from perception.frame import Frame

CAMERA = "frontleft_fisheye_image"


def _record(path: Path, n: int, chunk_size: int = 16 * 1024, size: tuple[int, int] = (320, 240)) -> list[bytes]:
    """`n` distinct JPEG frames recorded to `path`, a few per chunk."""
    base = cv2.resize(skdata.camera(), size)
    jpegs = []
    with Recorder(path, chunk_size=chunk_size) as rec:
        for i in range(n):
            ok, jpeg = cv2.imencode(".jpg", np.roll(base, 5 * i, axis=1))
            assert ok
            jpegs.append(jpeg.tobytes())
            t = 100.0 + i / 15
            rec.record_frame(Frame(CAMERA, cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED), t, t,
                                   encoded=jpegs[-1], seq=i))
    return jpegs


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[bytes]]:
    path = tmp_path_factory.mktemp("rec") / "run.mcap"
    return path, _record(path, 60)


def _chunk_offsets(path: Path) -> list[int]:
    with open(path, "rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    return sorted(ci.chunk_start_offset for ci in summary.chunk_indexes)


def _read_all(path: Path) -> McapRecording:
    recording = McapRecording(path)
    for _ in recording.items():
        pass
    return recording


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = command_app("replay", replay_command)
    return app


def _replay(app: typer.Typer, *args: str) -> object:
    return CliRunner().invoke(app, ["replay", *args], terminal_width=250)


# --- recordings ----------------------------------------------------------------------------


def test_two_recordings_joined_are_not_reported_complete(
    recording: tuple[Path, list[bytes]], tmp_path: Path
) -> None:
    path, jpegs = recording
    joined = tmp_path / "joined.mcap"
    joined.write_bytes(path.read_bytes() + path.read_bytes())
    read = _read_all(joined)
    assert read.report.frames == len(jpegs)  # the first, whole
    assert not read.report.complete
    problems = [f"{p.where}: {p.what}" for p in read.report.problems]
    size = path.stat().st_size
    assert any(w.startswith(f"byte {size}: a second recording ({size} bytes) follows") for w in problems), problems
    trailing = tmp_path / "trailing.mcap"
    trailing.write_bytes(path.read_bytes() + b"\0" * 100)
    read = _read_all(trailing)
    assert read.report.frames == len(jpegs) and not read.report.complete
    assert [p.what for p in read.report.problems] == ["100 bytes follow the end of the recording; not read"]


def test_one_bit_flipped_in_the_first_chunk_loses_that_chunk_only(
    recording: tuple[Path, list[bytes]], tmp_path: Path
) -> None:
    """Regression: the first chunk holds the only channel records in the data section; with it
    unreadable every later message was on an 'unknown channel': nothing readable."""
    path, jpegs = recording
    first = _chunk_offsets(path)[0]
    data = bytearray(path.read_bytes())
    data[first + 200] ^= 0x10
    flipped = tmp_path / "flipped.mcap"
    flipped.write_bytes(bytes(data))
    read = _read_all(flipped)
    frames = [f for f in McapRecording(flipped).frames()]
    assert len(frames) >= 0.9 * len(jpegs)
    assert all(f.encoded == jpegs[f.seq] for f in frames)  # nothing damaged slipped through
    assert not read.report.complete
    assert any(f"byte {first}" == p.where for p in read.report.problems)
    assert any(f"{len(frames)} of the {len(jpegs)} frames the file lists" in p.what
               for p in read.report.problems)


def test_bad_opcodes_outside_mcaps_range_are_reported_not_raised(
    recording: tuple[Path, list[bytes]], tmp_path: Path
) -> None:
    """Regression: `ValueError: 221 is not a valid Opcode` while reporting a damaged record."""
    path, jpegs = recording
    offsets = _chunk_offsets(path)
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack_from("<Q", data, offsets[1] + 1)
    data[offsets[1] + 9 + length] = 0xDD  # the record after the second chunk: a private opcode
    data[offsets[1] + 10 + length : offsets[1] + 18 + length] = struct.pack("<Q", 1 << 40)
    bad = tmp_path / "dd.mcap"
    bad.write_bytes(bytes(data))
    read = _read_all(bad)
    assert read.report.frames == len(jpegs)
    assert any("opcode 0xdd" in p.what for p in read.report.problems)


def test_recordings_configuration_survives_a_damaged_first_chunk(
    recording: tuple[Path, list[bytes]], tmp_path: Path
) -> None:
    path, _ = recording
    data = bytearray(path.read_bytes())
    data[_chunk_offsets(path)[0] + 100] ^= 0x01
    flipped = tmp_path / "flipped.mcap"
    flipped.write_bytes(bytes(data))
    assert recording_header(flipped) == recording_header(path)


class _TimeLimit(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _TimeLimit()


@pytest.fixture(scope="module")
def small_recording(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("small") / "small.mcap"
    _record(path, 12, chunk_size=4 * 1024, size=(96, 72))
    return path.read_bytes()


damage = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
                                         min_size=1, max_size=8)),
    st.tuples(st.just("cut"), st.floats(0, 1)),
    st.tuples(st.just("bytes"), st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=16)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=damage)
def test_fuzzed_recordings_never_raise_hang_or_crash(
    small_recording: bytes, tmp_path: Path, damage: tuple
) -> None:
    data = bytearray(small_recording)
    if damage[0] == "flip":
        for where, bit in damage[1]:
            data[int(where * len(data))] ^= 1 << bit
    elif damage[0] == "cut":
        data = data[: int(damage[1] * len(data))]
    else:
        at = int(damage[1] * len(data))
        data[at : at + len(damage[2])] = damage[2]
    path = tmp_path / "fuzzed.mcap"
    path.write_bytes(bytes(data))
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)  # per case: a hang fails the case instead of the whole run
    try:
        recording_header(path)
        try:
            recording = McapRecording(path)
        except ReplayInputError:
            return  # magic bytes damaged or file empty: a clear error is the right answer
        frames = list(recording.frames())
        assert recording.report.frames == len(frames)
        if bytes(data) != small_recording:
            assert not recording.report.complete or len(frames) == 12
    except _TimeLimit:
        pytest.fail(f"reading took over 10 s: {damage}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --- videos --------------------------------------------------------------------------------


def _video(path: Path, n: int = 40) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    rng = np.random.default_rng(0)
    base = cv2.cvtColor(cv2.resize(skdata.astronaut(), (320, 240)), cv2.COLOR_RGB2BGR)
    for i in range(n):
        noisy = base.copy()
        noisy[rng.integers(0, 240, 400), rng.integers(0, 320, 400)] = 255  # detail to encode
        writer.write(np.roll(noisy, 3 * i, axis=1))
    writer.release()


def _collect(source: object) -> list[Frame]:
    async def run() -> list[Frame]:
        out = [f async for f in source.frames()]  # type: ignore[attr-defined]
        await source.close()  # type: ignore[attr-defined]
        return out

    return asyncio.run(run())


def test_bit_flipped_video_is_reported_damaged_and_ffmpeg_stays_quiet(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Regression: ~120 FFmpeg lines on the terminal, and "input complete: yes"."""
    path = tmp_path / "clip.mp4"
    _video(path)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(1)
    for at in rng.integers(len(data) // 10, len(data) * 9 // 10, 30):
        data[at] ^= 0x04
    flipped = tmp_path / "flipped.mp4"
    flipped.write_bytes(bytes(data))
    source = VideoFrameSource(flipped)
    frames = _collect(source)
    assert frames
    assert "@ 0x" not in capfd.readouterr().err  # FFmpeg's "[mpeg4 @ 0x...]" lines
    damaged = [p for p in source.report.problems if "damaged: FFmpeg:" in p.what]
    assert damaged and damaged[0].where.startswith("frame ")
    assert not source.report.complete
    # An intact video: nothing to say.
    clean = VideoFrameSource(path)
    assert len(_collect(clean)) == 40 and clean.report.complete and clean.report.problems == []


# --- images and folders --------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", zlib.crc32(chunk[4:]))


def _jpeg_header(width: int, height: int) -> bytes:
    sof = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


def test_image_sizes_come_from_headers_and_big_ones_are_refused(tmp_path: Path) -> None:
    for ext in (".png", ".jpg", ".bmp", ".webp", ".tiff", ".pgm"):
        ok, buf = cv2.imencode(ext, np.zeros((30, 50), np.uint8))
        assert ok
        assert image_problem(buf.tobytes()) is None, ext
        assert image_problem(buf.tobytes(), max_pixels=1000) == \
            "too large: 50x30 pixels > the limit of 1000 (0.001 MP); not decoded", ext
    assert image_problem(_png_header(40000, 40000)).startswith("too large: 40000x40000")
    assert image_problem(_jpeg_header(65000, 65000)).startswith("too large: 65000x65000")
    assert image_problem(b"") == "empty file"
    assert image_problem(b"junk" * 10).startswith("not a decodable image")


def test_folder_with_bad_files_replays_the_good_ones(app: typer.Typer, tmp_path: Path) -> None:
    """Regression: a 0-byte .jpg made the reader raise inside the pipeline: replay hung forever."""
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = cv2.resize(cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR), (320, 240))
    for i in range(4):
        cv2.imwrite(str(folder / f"img_{i}.jpg"), photo)
    (folder / "img_4.jpg").write_bytes(b"")
    (folder / "img_5.png").write_bytes(_png_header(40000, 40000) + b"\0" * 64)
    (folder / "img_6.jpg").write_bytes(_jpeg_header(65000, 65000))
    big = np.zeros((4100, 4100), np.uint8)  # a real file just over the limit: 16.8 megapixels
    cv2.imwrite(str(folder / "img_7.png"), big)
    os.mkfifo(folder / "img_8.jpg")  # never opened: not a regular file
    result = _replay(app, str(folder), "--config", "sim.yaml")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "frames read        │ 4" in out
    assert "img_4.jpg │ empty file; skipped" in out
    assert "too large: 40000x40000" in out and "too large: 65000x65000" in out
    assert "too large: 4100x4100" in out
    assert "Traceback" not in out


def test_folder_of_junk_and_a_fifo_are_clear_errors(app: typer.Typer, tmp_path: Path) -> None:
    """Regressions: junk only -> traceback (`imdecode_ !buf.empty()`); a FIFO named .mcap hung."""
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"")
    (junk / "b.png").write_bytes(b"not a png")
    result = _replay(app, str(junk))
    assert result.exit_code == 1, result.output
    assert "nothing readable" in result.output and "a.jpg: empty file" in result.output
    fifo = tmp_path / "run.mcap"
    os.mkfifo(fifo)
    result = _replay(app, str(fifo))
    assert result.exit_code == 1
    assert "not a regular file" in result.output
