"""`spot-agent detect`: folders, videos, corrupt files, the JSONL contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from fixtures.image_bombs import jpeg_header_claiming, zero_png
from fixtures.perception_support import render_tag
from skimage import data
from support.cli import command_app
from typer.testing import CliRunner

from perception.cli import detect_command


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = command_app("detect", detect_command)
    return app


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


@pytest.fixture()
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_astronaut.jpg"), _bgr(data.astronaut()))
    good = (folder / "a_astronaut.jpg").read_bytes()
    (folder / "b_broken.jpg").write_bytes(good[: len(good) // 3])  # truncated download
    (folder / "notes.txt").write_text("not an image")
    writer = cv2.VideoWriter(str(folder / "c_clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (740, 500))
    moto = _bgr(data.stereo_motorcycle()[0])[:500, :740]
    for i in range(3):
        writer.write(np.ascontiguousarray(np.roll(moto, 4 * i, axis=1)))
    writer.release()
    K = np.array([[552.0, 0, 322.0], [0, 550.0, 238.0], [0, 0, 1]])
    cv2.imwrite(str(folder / "d_tag.png"), render_tag(8, np.diag([1.0, -1.0, -1.0]), np.array([0, 0, 1.0]), 0.146, K))
    return folder


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]


def test_folder_with_video_corrupt_file_and_tag(app: typer.Typer, inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["detect", str(inputs), "--out", str(out), "--intrinsics", "552,550,322,238", "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    records = _records(out)
    by_file: dict[str, list[dict]] = {}
    for r in records:
        by_file.setdefault(Path(r["file"]).name, []).append(r)
    assert set(by_file) == {"a_astronaut.jpg", "c_clip.mp4", "d_tag.png"}
    person = [r for r in by_file["a_astronaut.jpg"] if r["label"] == "person"]  # (and a 0.39 "suitcase")
    assert [(r["label"], r["frame"]) for r in person] == [("person", 0)]
    # She scores as sure from the COCO detector alone: the person model (a second stage for unsure
    # people) adds her skeleton only when its crop covered her; when it does, all 17 points.
    assert {"file", "frame", "label", "score", "box", "model"} <= set(person[0])
    assert set(person[0]) <= {"file", "frame", "label", "score", "box", "model", "keypoints"}
    assert len(person[0].get("keypoints", [0] * 17)) == 17
    x1, y1, x2, y2 = person[0]["box"]
    assert 0 <= x1 < 60 and y1 < 60 and 300 < x2 <= 512 and y2 > 450  # original 512 x 512 pixels
    video = by_file["c_clip.mp4"]
    assert sorted({r["frame"] for r in video}) == [0, 1, 2]
    assert all(r["label"] == "motorcycle" for r in video if r["score"] > 0.5)
    tag = by_file["d_tag.png"]
    assert [r["label"] for r in tag] == ["tag:8"]
    assert tag[0]["pose"]["camera_t_tag"] == pytest.approx([0.0, 0.0, 1.0], abs=0.03)
    # Annotated images: one per image, one per video frame.
    written = sorted(p.name for p in out.glob("*.jpg"))
    assert written == ["a_astronaut.jpg", "c_clip_000000.jpg", "c_clip_000001.jpg", "c_clip_000002.jpg", "d_tag.jpg"]
    assert cv2.imread(str(out / "a_astronaut.jpg")).shape == (512, 512, 3)
    assert "b_broken.jpg" in result.output and "truncated" in result.output


def test_nothing_readable_exits_non_zero(app: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    junk = tmp_path / "clip.mp4"
    junk.write_bytes(b"\x00" * 100)
    result = CliRunner().invoke(app, ["detect", str(bad), str(junk), str(tmp_path / "missing.png"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1, result.output
    assert (tmp_path / "o" / "detections.jsonl").read_text() == ""


def test_tag_without_intrinsics_has_null_pose_and_a_hint(app: typer.Typer, inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "o2"
    result = CliRunner().invoke(app, ["detect", str(inputs / "d_tag.png"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    [rec] = _records(out)
    assert rec["label"] == "tag:8" and rec["pose"] is None
    assert "--intrinsics" in result.output


def test_other_model_via_options(app: typer.Typer, tmp_path: Path) -> None:
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    img = np.zeros((128, 128, 3), np.uint8)
    img[20:60, 40:100] = (0, 255, 0)
    cv2.imwrite(str(tmp_path / "green.png"), img)
    out = tmp_path / "o3"
    result = CliRunner().invoke(
        app,
        ["detect", str(tmp_path / "green.png"), "--out", str(out), "--model", str(fixtures / "ssd_postprocess_fixture.tflite"),
         "--labels", str(labels), "--no-fiducials"],
    )
    assert result.exit_code == 0, result.output
    [rec] = _records(out)
    assert rec["label"] == "green" and rec["box"] == pytest.approx([40, 20, 100, 60], abs=0.5)


def test_unsupported_model_is_a_clear_setup_error(app: typer.Typer, tmp_path: Path) -> None:
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    result = CliRunner().invoke(
        app, ["detect", str(tmp_path), "--out", str(tmp_path / "o"), "--model", str(fixtures / "classifier_fixture.tflite")]
    )
    assert result.exit_code == 2
    assert "fits no decoder" in result.output


# --- bad input (issue 11): names that are not UTF-8, images too large to decode -------------


# The child reports its own peak RSS (VmHWM: this process image's high-water mark, reset by
# exec). A parent's rusage would not do: a forked child inherits the forking process's peak, and
# this test process grows past 1 GB over the whole suite.
_PEAK_REPORTER = """
import atexit, sys
report = sys.argv[1]
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(report, "w").write(line.split()[1])
atexit.register(_peak)
sys.argv = ["spot-agent", *sys.argv[2:]]
from agent.cli import main
main()
"""


def _detect_in_subprocess(args: list[str], tmp_path: Path) -> tuple[int, str, float]:
    """Run `spot-agent detect` in its own process: (exit status, output, peak RSS in MB). A crash
    (a signal) is a negative status here, not the end of the test run."""
    log, peak = tmp_path / "detect.log", tmp_path / "peak_kb"
    with open(log, "wb") as out:
        proc = subprocess.run(
            [sys.executable, "-c", _PEAK_REPORTER, str(peak), "detect", *args, "--threads", "1"],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "250"}, check=False,
        )
    peak_mb = int(peak.read_text()) / 1024 if peak.exists() else float("nan")
    return proc.returncode, log.read_bytes().decode("utf-8"), peak_mb


@pytest.mark.parametrize(
    ("name", "content", "size"),
    [
        ("real_20000.png", lambda: zero_png(20000, 20000), "20000x20000"),
        ("real_40000.png", lambda: zero_png(40000, 40000), "40000x40000"),
        ("claims_65000.jpg", lambda: jpeg_header_claiming(65000, 65000), "65000x65000"),
    ],
)
def test_images_too_large_are_skipped_before_decoding(
    tmp_path: Path, name: str, content: Callable[[], bytes], size: str
) -> None:
    (tmp_path / name).write_bytes(content())
    status, output, peak_mb = _detect_in_subprocess([str(tmp_path / name), "--out", str(tmp_path / "out")], tmp_path)
    assert status == 1, output  # nothing readable: reported, no traceback
    assert f"skipped {tmp_path / name}: too large: {size} pixels > the limit of 50000000 (50 MP)" in output
    assert "Traceback" not in output
    assert 50 < peak_mb < 1024, f"peak RSS {peak_mb:.0f} MB"  # the CORE I/O container's limit is 1 GB


def _sideways_astronaut() -> np.ndarray:
    """A 640 x 480 frame holding the grey astronaut turned +78 degrees: what the frontleft
    camera (mounted sideways; the agent turns its frames by -78) sees of a person."""
    grey = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    affine = cv2.getRotationMatrix2D((255.5, 255.5), 78.0, 0.75)
    affine[:, 2] += (319.5 - 255.5, 239.5 - 255.5)
    return cv2.warpAffine(grey, affine, (640, 480))


def test_camera_from_the_file_name_turns_a_sideways_frame_upright(app: typer.Typer, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "frontleft_fisheye_image_0001.jpg"), _sideways_astronaut())
    result = CliRunner(env={"COLUMNS": "300"}).invoke(
        app, ["detect", str(folder), "--out", str(tmp_path / "out"), "--no-fiducials"])
    assert result.exit_code == 0, result.output
    assert "camera frontleft_fisheye_image (from the file name)" in result.output
    assert "looks sideways" not in result.output
    assert [r["label"] for r in _records(tmp_path / "out")] == ["person"]


def test_a_sideways_frame_without_a_camera_is_reported(app: typer.Typer, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "frame.jpg"), _sideways_astronaut())
    cv2.imwrite(str(folder / "upright.jpg"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY))
    result = CliRunner(env={"COLUMNS": "300"}).invoke(
        app, ["detect", str(folder), "--out", str(tmp_path / "out"), "--no-fiducials"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    frame_line = next(line for line in lines if "frame.jpg" in line)
    assert "looks sideways" in frame_line and "--camera" in frame_line
    assert "looks sideways" not in next(line for line in lines if "upright.jpg" in line)
