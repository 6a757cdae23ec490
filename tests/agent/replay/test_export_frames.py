"""`spot-agent export-frames`: upright frames and COCO pre-labels out of what replay can read.

A live run on the simulated Spot is recorded exactly as `spot-agent run --record` records it
(real TLS gRPC, real detector; the demo world: a tag ahead, a stop sign, a person pacing) and
exported; a video and an image folder with Spot camera names, and damaged inputs, too.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from mcap.reader import make_reader
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from skimage import data as skdata
from support.cli import command_app
from typer.testing import CliRunner

from agent.config import config_overrides
from agent.demo import sim_agent_config
from agent.replay.export_command import export_frames_command
from agent.replay.images import decode_image
from agent.replay.mcap import McapRecording
from agent.run import run_agent
from configs import SHIPPED_DIR as CONFIG_DIR
from perception.rotation import upright_rotation
from sim.server import SimServer

CAMERAS = {"frontleft_fisheye_image": -78.0, "frontright_fisheye_image": -102.0}


def _cli(*args: str) -> Any:
    app = command_app("export-frames", export_frames_command)
    return CliRunner().invoke(app, ["export-frames", *args], terminal_width=250)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A ~4 s live run, recorded in segments (a new one every 2 s): run.mcap, run-001.mcap..."""
    path = tmp_path_factory.mktemp("rec") / "run.mcap"
    sim = SimServer.start(scenario=CONFIG_DIR / "scenarios" / "default.yaml", port=0)
    try:
        cfg = config_overrides(sim_agent_config(sim), **{"recording.max_file_s": 2.0})
        assert cfg.cameras.sources == list(CAMERAS)
        asyncio.run(run_agent(cfg, duration_s=4.0, stop_on_signals=False, record=path))
    finally:
        sim.stop()
    segments = [path, *sorted(path.parent.glob("run-*.mcap"))]
    assert len(segments) >= 2
    return segments


@pytest.fixture(scope="module")
def exported(recording: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "frames"
    result = _cli(*map(str, recording), "--every", "0.5", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "run-001.mcap" in result.output and "frames/s" in result.output
    assert "skipped" not in result.output  # a segment without frames (the start-up) is no error
    return out


def _recorded_frames(recording: list[Path]) -> list[Any]:
    return [f for path in recording for f in McapRecording(path, decode_image).frames()]


def _labels(out: Path) -> dict[str, Any]:
    return json.loads((out / "labels.json").read_text())


def _coco(out: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        return COCO(str(out / "labels.json"))


@pytest.mark.slow
def test_recorded_frames_come_out_upright_and_grey(recording: list[Path], exported: Path) -> None:
    labels = _labels(exported)
    recorded = {(f.camera, f.seq): f for f in _recorded_frames(recording)}
    # Both segments exported, each image naming its file (never a path of this machine).
    sources = {im["source"] for im in labels["images"]}
    assert len(sources) >= 2 and sources <= {p.name for p in recording}
    for camera, angle in CAMERAS.items():
        image = next(im for im in labels["images"] if im["camera"] == camera)
        assert image["upright"] is True
        frame = recorded[(camera, int(image["file_name"].removesuffix(".png").rsplit("_", 1)[1]))]
        assert image["time"] == pytest.approx(frame.acquisition_time_robot, abs=1e-5)
        written = cv2.imread(str(exported / image["file_name"]), cv2.IMREAD_UNCHANGED)
        assert written.ndim == 2  # grey stays grey
        h, w = frame.image.shape
        rotation = upright_rotation(angle, w, h)
        assert (image["width"], image["height"]) == rotation.size == written.shape[::-1]
        upright = rotation.apply(frame.image).astype(float)
        # The agent's own turn (JPEG's loss aside), not the other front camera's (same canvas).
        wrong = upright_rotation(-180.0 - angle, w, h).apply(frame.image).astype(float)
        assert np.abs(written - upright).mean() < 2.0
        assert np.abs(written - wrong).mean() > 10 * np.abs(written - upright).mean()


@pytest.mark.slow
def test_sampling_holds_per_camera_on_recording_time(recording: list[Path], exported: Path) -> None:
    """One frame per camera every 0.5 s of recording time, across the segments' boundary too."""
    labels = _labels(exported)
    times: dict[str, list[float]] = defaultdict(list)
    for f in _recorded_frames(recording):
        times[f.camera].append(f.acquisition_time_robot)
    exported_times: dict[str, list[float]] = defaultdict(list)
    for image in labels["images"]:
        exported_times[image["camera"]].append(image["time"])
    assert set(exported_times) == set(CAMERAS)
    for camera, chosen in exported_times.items():
        recorded = sorted(times[camera])
        assert chosen == sorted(chosen) and chosen[0] == pytest.approx(recorded[0], abs=1e-5)
        assert len(chosen) >= (recorded[-1] - recorded[0]) / 0.5 * 0.6  # ~8 over a ~4 s run
        for before, after in zip(chosen, chosen[1:]):
            assert after - before >= 0.5 - 1e-4  # the sampler's slack for float times
            # ...and it is the first frame due: none was skipped that was already 0.5 s on.
            assert not [t for t in recorded if before + 0.5 <= t < after - 1e-6]


@pytest.mark.slow
def test_prelabels_load_in_pycocotools_and_lie_inside_their_images(exported: Path) -> None:
    coco = _coco(exported)
    assert coco.cats[1]["name"] == "person" and len(coco.cats[1]["keypoints"]) == 17
    names = {coco.cats[a["category_id"]]["name"] for a in coco.anns.values()}
    assert {"person", "tag:1"} <= names  # the demo world's pacer and dock tag
    people = [a for a in coco.anns.values() if a["category_id"] == 1]
    assert all(len(a["keypoints"]) == 51 for a in people)  # every person, as COCO's files
    assert any(a["num_keypoints"] > 0 for a in people)  # the person model saw the pacer
    for a in coco.anns.values():
        image = coco.imgs[a["image_id"]]
        x, y, w, h = a["bbox"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0, a
        assert x + w <= image["width"] and y + h <= image["height"], a
        assert a["area"] == pytest.approx(w * h, rel=1e-3) and a["iscrowd"] == 0 and 0 < a["score"] <= 1
        kp = np.array(a.get("keypoints", []), dtype=float).reshape(-1, 3)
        assert a.get("num_keypoints", 0) == int((kp[:, 2] == 2).sum())
        assert set(kp[:, 2]) <= {0.0, 2.0}
        seen = kp[kp[:, 2] == 2]
        assert np.all((seen[:, 0] >= 0) & (seen[:, 0] <= image["width"]))
        assert np.all((seen[:, 1] >= 0) & (seen[:, 1] <= image["height"]))


@pytest.mark.slow
def test_prelabels_scored_against_themselves_give_ap_one(exported: Path) -> None:
    """The issue's round trip: what export writes, eval reads; perfect detections score 1.0."""
    truth = _coco(exported)
    detections = [{k: a[k] for k in ("image_id", "category_id", "bbox", "score")}
                  for a in truth.anns.values()]
    with contextlib.redirect_stdout(io.StringIO()):
        scored = COCOeval(truth, truth.loadRes(detections), "bbox")
        scored.evaluate()
        scored.accumulate()
        scored.summarize()
    assert scored.stats[0] == pytest.approx(1.0)  # AP @ IoU 0.5:0.95
    assert scored.stats[1] == pytest.approx(1.0)  # AP @ IoU 0.5
    # The skeletons too, as COCO scores keypoints (people only: their category has them).
    people = [{k: a[k] for k in ("image_id", "category_id", "keypoints", "score")}
              for a in truth.anns.values() if a.get("num_keypoints")]
    assert people
    with contextlib.redirect_stdout(io.StringIO()):
        scored = COCOeval(truth, truth.loadRes(people), "keypoints")
        scored.params.catIds = [1]
        scored.evaluate()
        scored.accumulate()
        scored.summarize()
    assert scored.stats[0] == pytest.approx(1.0)  # OKS AP @ 0.5:0.95


@pytest.mark.slow
def test_a_damaged_recording_exports_what_is_readable(recording: list[Path], tmp_path: Path) -> None:
    biggest = max(recording, key=lambda p: p.stat().st_size)
    data = bytearray(biggest.read_bytes())
    # One bit inside a chunk's compressed records (not wherever the file's middle happens to fall:
    # a live recording's layout differs run to run, and a bit in padding or a summary record can
    # lose nothing).
    with open(biggest, "rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None and len(summary.chunk_indexes) >= 2
    chunk = sorted(summary.chunk_indexes, key=lambda c: c.chunk_start_offset)[len(summary.chunk_indexes) // 2]
    data[chunk.chunk_start_offset + chunk.chunk_length // 2] ^= 0x10
    damaged = tmp_path / "damaged.mcap"
    damaged.write_bytes(bytes(data))
    result = _cli(str(damaged), "--every", "0.5", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert len(_labels(tmp_path / "out")["images"]) >= 2
    lost = [line for line in result.output.splitlines() if line.startswith("damaged.mcap: ")]
    assert lost and not any(line.startswith("damaged.mcap: skipped") for line in lost)
    assert any("byte" in line or "message" in line for line in lost), result.output


def _astronaut(size: tuple[int, int] = (320, 240)) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR), size)


def test_video_named_after_a_camera_is_turned_upright(tmp_path: Path) -> None:
    clip = tmp_path / "frontleft_fisheye_image_clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (320, 240))
    for _ in range(20):  # 2 s at 10 frames/s
        writer.write(_astronaut())
    writer.release()
    capture = cv2.VideoCapture(str(clip))
    ok, first = capture.read()
    capture.release()
    assert ok
    out = tmp_path / "out"
    result = _cli(str(clip), "--every", "0.5", "--out", str(out))
    assert result.exit_code == 0, result.output
    images = _labels(out)["images"]
    assert [im["file_name"] for im in images] == [
        f"frontleft_fisheye_image_{i:06d}.png" for i in (0, 5, 10, 15)]
    assert {im["camera"] for im in images} == {"frontleft_fisheye_image"}
    assert images[0]["source"] == clip.name
    written = cv2.imread(str(out / images[0]["file_name"]), cv2.IMREAD_UNCHANGED)
    upright = upright_rotation(-78.0, 320, 240).apply(first)
    assert written.shape == upright.shape  # colour stays colour, on the turned canvas
    assert np.abs(written.astype(float) - upright).mean() < 3.0


def test_image_folder_names_decide_the_turn_and_bad_inputs_are_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    grey = cv2.cvtColor(_astronaut(), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(folder / "frontright_fisheye_image_0001.png"), grey)
    cv2.imwrite(str(folder / "holiday.png"), grey)  # no camera in its name: already upright
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "corrupt.mcap").write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 100)
    (tmp_path / "garbage.mp4").write_bytes(b"this is no video")
    out = tmp_path / "out"
    paths = [tmp_path / "corrupt.mcap", folder, tmp_path / "garbage.mp4"]
    result = _cli(*map(str, paths), "--every", "0", "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("corrupt.mcap: skipped: ") for line in lines), result.output
    assert any(line.startswith("garbage.mp4: skipped: ") and "not a video" in line for line in lines)
    # The folder's bad image is listed, the others are exported.
    assert any(line.startswith("photos: broken.jpg: ") for line in lines), result.output
    images = {im["source"]: im for im in _labels(out)["images"]}
    assert set(images) == {"photos/frontright_fisheye_image_0001.png", "photos/holiday.png"}
    turned = images["photos/frontright_fisheye_image_0001.png"]
    assert turned["camera"] == "frontright_fisheye_image"
    expected = upright_rotation(-102.0, 320, 240).apply(grey)
    written = cv2.imread(str(out / turned["file_name"]), cv2.IMREAD_UNCHANGED)
    assert written.shape == expected.shape and np.abs(written.astype(float) - expected).mean() < 2.0
    plain = images["photos/holiday.png"]
    assert (plain["width"], plain["height"]) == (320, 240) and plain["camera"] == "images"


def test_nothing_readable_writes_nothing_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "corrupt.mcap").write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 100)
    (tmp_path / "garbage.mp4").write_bytes(b"this is no video")
    out = tmp_path / "out"
    result = _cli(str(tmp_path / "corrupt.mcap"), str(tmp_path / "garbage.mp4"), "--out", str(out))
    assert result.exit_code == 2, result.output
    assert "nothing exported" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.mcap", "garbage.mp4"]  # no leftovers


def test_an_existing_output_is_never_touched(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), _astronaut())
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    result = _cli(str(folder), "--out", str(out))
    assert result.exit_code == 2 and "not an empty folder" in result.output
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "photos"]


def test_a_bad_config_is_one_line_naming_the_field(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), _astronaut())
    config = tmp_path / "agent.yaml"
    config.write_text("detector:\n  score_threshold: 2.0\n")
    result = _cli(str(folder), "--config", str(config), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "agent.yaml" in result.output and "detector.score_threshold" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_prelabels_round_trip_through_spot_agent_eval(exported: Path, tmp_path: Path) -> None:
    """export-frames -> `spot-agent eval` with the same config: the agent's perception scored
    against its own pre-labels finds every box again (AP 1.0 for every labelled class, tags too)."""
    from agent.eval.command import eval_command

    app = command_app("eval", eval_command)
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, ["eval", str(exported / "labels.json"), "--config", "sim",
                                      "--out", str(out), "--workers", "1"], terminal_width=250)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    classes = report["runs"][0]["classes"]
    labelled = {c["name"] for c in _labels(exported)["categories"]
                if any(a["category_id"] == c["id"] for a in _labels(exported)["annotations"])}
    assert {"person", "tag:1"} <= labelled <= set(classes)
    for label in labelled:
        assert classes[label]["coco"]["AP50"] == pytest.approx(1.0), label
        assert classes[label]["coco"]["AP"] == pytest.approx(1.0, abs=0.02), label
