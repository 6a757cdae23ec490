"""Replay sources: recordings (whole, truncated, damaged, garbage), video files, image folders."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from agent.core.seams import FrameSource
from agent.recording.writer import Recorder
from agent.replay.files import ImageFolderSource, VideoFrameSource
from agent.replay.mcap import McapFrameSource, McapRecording
from agent.replay.reading import ReplayInputError
from agent.replay.sources import open_replay_source
from perception.frame import Frame

CAMERA = "frontleft_fisheye_image"


def _photos() -> list[np.ndarray]:
    """Public test photos bundled with scikit-image, as 320x240 BGR."""
    rgb = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    return [cv2.resize(cv2.cvtColor(p, cv2.COLOR_RGB2BGR), (320, 240)) for p in rgb]


def _collect(source: FrameSource) -> list[Frame]:
    async def run() -> list[Frame]:
        frames = [f async for f in source.frames()]
        await source.close()
        return frames

    return asyncio.run(run())


def _record(path: Path, n: int, chunk_size: int = 64 * 1024) -> list[bytes]:
    """`n` distinct grey JPEG frames (~20 KB each) recorded to `path`."""
    base = cv2.resize(skdata.camera(), (640, 480))
    jpegs = []
    with Recorder(path, chunk_size=chunk_size) as rec:
        for i in range(n):
            image = np.roll(base, 7 * i, axis=1)
            ok, jpeg = cv2.imencode(".jpg", image)
            assert ok
            jpegs.append(jpeg.tobytes())
            decoded = cv2.imdecode(jpeg, cv2.IMREAD_UNCHANGED)
            t = 100.0 + i / 15
            assert rec.record_frame(Frame(CAMERA, decoded, t, t, encoded=jpegs[-1], seq=i))
    return jpegs


def test_mcap_source_yields_recorded_frames_in_order(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    jpegs = _record(path, 12)
    source = open_replay_source(path)
    assert isinstance(source, McapFrameSource)
    assert isinstance(source, FrameSource)
    assert source.cameras == [CAMERA]
    frames = _collect(source)
    assert [f.encoded for f in frames] == jpegs
    assert [f.seq for f in frames] == list(range(12))
    assert source.report.complete and source.report.frames == 12


def test_truncated_recording_reads_what_is_there_and_says_where(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    jpegs = _record(path, 40)
    data = path.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[: len(data) // 2])
    recording = McapRecording(cut)
    frames = list(recording.frames())
    assert 5 < len(frames) < 40
    assert [f.encoded for f in frames] == jpegs[: len(frames)]  # a prefix, intact
    report = recording.report
    assert not report.complete and report.readable
    whats = " / ".join(f"{p.where}: {p.what}" for p in report.problems)
    assert "file ends inside a chunk" in whats
    assert "byte " in whats


def test_damaged_chunk_is_skipped_and_later_chunks_still_read(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    jpegs = _record(path, 40)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # one flipped byte inside a compressed chunk
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(bytes(data))
    recording = McapRecording(bad)
    frames = list(recording.frames())
    assert 20 < len(frames) < 40
    assert frames[-1].encoded == jpegs[-1]  # reading went on past the damage
    assert all(f.encoded == jpegs[f.seq] for f in frames)  # nothing damaged slipped through
    assert any("skipped" in p.what or "unreadable" in p.what for p in recording.report.problems)


def test_damaged_record_framing_resyncs_on_the_summary(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    jpegs = _record(path, 40)
    data = bytearray(path.read_bytes())
    from mcap.reader import make_reader

    with open(path, "rb") as f:
        offsets = sorted(ci.chunk_start_offset for ci in make_reader(f).get_summary().chunk_indexes)
    # The record after the third chunk (its message index) gets a bad opcode: the framing is
    # lost there, and found again at the next chunk the summary lists.
    (length,) = struct.unpack_from("<Q", data, offsets[2] + 1)
    data[offsets[2] + 9 + length] = 0x42
    # The fifth chunk's own header is damaged: the chunk index says where it is and how long.
    data[offsets[4] : offsets[4] + 9] = b"\xee" * 9
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(bytes(data))
    recording = McapRecording(bad)
    frames = list(recording.frames())
    assert [f.encoded for f in frames] == jpegs  # nothing lost: both damages were around the data
    whats = [f"{p.where}: {p.what}" for p in recording.report.problems]
    assert any(f"..{offsets[3]} unreadable (bad record opcode 0x42)" in w for w in whats), whats
    assert f"byte {offsets[4]}: damaged chunk header; read at the chunk index's offset and length" in whats
    assert not recording.report.complete


def test_garbage_is_a_clear_error(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.mcap"
    garbage.write_bytes(b"this is not a recording" * 10)
    with pytest.raises(ReplayInputError, match="not an MCAP file"):
        open_replay_source(garbage)
    empty = tmp_path / "empty.mcap"
    empty.write_bytes(b"")
    with pytest.raises(ReplayInputError, match="empty file"):
        McapRecording(empty)
    with pytest.raises(ReplayInputError, match="no such file"):
        open_replay_source(tmp_path / "missing.mcap")


def test_mcap_magic_then_garbage_reads_nothing_without_crashing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(b"\x89MCAP0\r\n" + bytes(range(256)) * 4)
    recording = McapRecording(bad)
    assert list(recording.items()) == []
    assert not recording.report.readable
    assert recording.report.problems


def _write_video(path: Path, photos: list[np.ndarray], fps: float) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (320, 240))
    assert writer.isOpened()
    for photo in photos:
        writer.write(photo)
    writer.release()


def test_video_file_frames_and_times(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    photos = _photos() * 3
    _write_video(path, photos, fps=12.0)
    source = open_replay_source(path)
    assert isinstance(source, VideoFrameSource)
    frames = _collect(source)
    assert len(frames) == len(photos)
    # Real times: the video began its duration before the file was last written.
    t0 = frames[0].acquisition_time_local
    assert t0 == path.stat().st_mtime - len(photos) / 12.0
    assert [f.acquisition_time_local - t0 for f in frames] == pytest.approx([i / 12.0 for i in range(len(photos))], abs=1e-6)
    assert frames[0].image.shape == (240, 320, 3)
    # mp4v is lossy: the decoded frame is close to the photo written, not equal
    assert float(np.mean(np.abs(frames[1].image.astype(int) - photos[1].astype(int)))) < 12
    assert source.report.complete and source.cameras == ["video"]


def test_truncated_video_reports_lost_frames(tmp_path: Path) -> None:
    # An AVI (MJPG) cut short still opens (an mp4 cut before its index does not open at all).
    path = tmp_path / "clip.avi"
    photos = _photos() * 10
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    for photo in photos:
        writer.write(photo)
    writer.release()
    data = path.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    source = VideoFrameSource(cut)
    frames = _collect(source)
    assert 10 < len(frames) < len(photos)
    assert [f.seq for f in frames] == list(range(len(frames)))
    assert source.frame_count == len(photos)  # the header still says 40
    assert not source.report.complete
    assert source.report.problems[-1].where == f"frame {len(frames)}"
    assert "unreadable" in source.report.problems[-1].what


def test_not_a_video_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00" * 1000)
    with pytest.raises(ReplayInputError, match="not a video"):
        open_replay_source(path)


def test_image_folder_in_natural_order_keeps_jpeg_bytes(tmp_path: Path) -> None:
    photos = _photos()
    names = ["img_10.jpg", "img_2.png", "img_1.jpeg", "img_3.jpg"]
    written = {}
    for name, photo in zip(names, photos):
        ok, buf = cv2.imencode(Path(name).suffix, photo)
        assert ok
        (tmp_path / name).write_bytes(buf.tobytes())
        written[name] = buf.tobytes()
    (tmp_path / "img_4.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    source = open_replay_source(tmp_path, fps=5.0)
    assert isinstance(source, ImageFolderSource)
    frames = _collect(source)
    assert [f.extra["file"] for f in frames] == ["img_1.jpeg", "img_2.png", "img_3.jpg", "img_10.jpg"]
    # Real times: the first image's modification time, then slot / fps (img_4 keeps its slot).
    t0 = (tmp_path / "img_1.jpeg").stat().st_mtime
    assert [f.acquisition_time_local - t0 for f in frames] == pytest.approx([0.0, 0.2, 0.4, 0.8], abs=1e-6)
    assert frames[0].encoded == written["img_1.jpeg"]
    assert frames[1].encoded is None  # PNG: no JPEG bytes to keep
    assert np.array_equal(frames[1].image, photos[1])  # PNG is lossless
    assert [(p.where, p.what) for p in source.report.problems] == [
        ("img_1.jpeg", "frame times start at its modification time, 1/5 s apart"),
        ("img_4.jpg", "not a decodable image (no readable PNG/JPEG/BMP/WebP/GIF/TIFF/PNM header); skipped"),
    ]
    assert source.report.frames == 4


def test_folder_without_images_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(ReplayInputError, match="no image files"):
        open_replay_source(tmp_path)


def test_closing_early_stops_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "r.mcap"
    _record(path, 30)
    source = McapFrameSource(path, prefetch=2)

    async def take_three() -> int:
        got = 0
        async for _ in source.frames():
            got += 1
            if got == 3:
                break
        await source.close()
        return got

    assert asyncio.run(take_three()) == 3
    assert source.report.frames <= 3 + 2 + 1  # read ahead by at most the prefetch depth


@pytest.mark.parametrize("grey", [True, False])
def test_replay_decodes_recorded_jpegs_to_the_live_pixels(tmp_path: Path, grey: bool) -> None:
    """Frames the robot path decoded (grey or colour, full size or reduced 1/2, 1/4, 1/8)
    recorded and read back: replay's detector gets exactly the pixels the live one got."""
    from bosdyn.api import image_pb2

    from perception.decode import decode_image_response

    photo = cv2.resize(cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR), (640, 480))
    image = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY) if grey else photo
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    fmt = image_pb2.Image
    live = []
    for i, min_side in enumerate([None, 240, 120, 60]):  # factors 1, 2, 4, 8
        resp = image_pb2.ImageResponse(status=image_pb2.ImageResponse.STATUS_OK)
        resp.source.name = CAMERA
        resp.shot.acquisition_time.seconds = 100 + i
        resp.shot.image.format = fmt.FORMAT_JPEG
        resp.shot.image.pixel_format = fmt.PIXEL_FORMAT_GREYSCALE_U8 if grey else fmt.PIXEL_FORMAT_RGB_U8
        resp.shot.image.rows, resp.shot.image.cols = 480, 640
        resp.shot.image.data = jpeg.tobytes()
        live.append(decode_image_response(resp, seq=i, min_side=min_side))
    assert [f.image_scale for f in live] == [1.0, 0.5, 0.25, 0.125]
    path = tmp_path / "live.mcap"
    with Recorder(path) as rec:
        for frame in live:
            assert rec.record_frame(frame)
    replayed = list(McapRecording(path).frames())
    assert len(replayed) == len(live)
    for got, want in zip(replayed, live):
        assert got.image_scale == want.image_scale
        assert got.image.shape == want.image.shape and np.array_equal(got.image, want.image)
