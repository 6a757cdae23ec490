"""`spot-agent replay` on videos, image folders and damaged recordings, with the real detector.

Inputs are public test photos bundled with scikit-image (an astronaut, a coffee cup, a cat).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from mcap.reader import make_reader
from skimage import data
from support.cli import command_app
from typer.testing import CliRunner

from agent.config import config_overrides, load_agent_config
from agent.fleet.command import replay_command
from agent.recording.writer import Recorder
from agent.replay.runner import replay
from behaviors.commands import Sit
from configs import SHIPPED_DIR as CONFIG_DIR
from perception.frame import Frame

RULES = """
limits: {max_speed_mps: 0.5}
cues:
  person:
    label: person
    min_score: 0.5
    persistence: {seen_in: 2, of_last: 3, clear_after_misses: 3, timeout_s: 1.0}
rules:
  - {name: sit_for_person, cue: person, behavior: sit, priority: 50, cooldown_s: 0}
"""


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = command_app("replay", replay_command)
    return app


def _photo(rgb: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (320, 240))


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "person_sit.yaml"
    path.write_text(RULES)
    return path


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory, rules_file: Path) -> Path:
    """configs/agent.yaml with the person rules (one interpreter thread: tests share 2 cores)."""
    cfg = load_agent_config(CONFIG_DIR / "agent.yaml")
    path = tmp_path_factory.mktemp("cfg") / "agent.yaml"
    data_ = cfg.model_dump(mode="json")
    data_["rules"] = str(rules_file)
    data_["detector"]["num_threads"] = 1
    import yaml

    path.write_text(yaml.safe_dump(data_))
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Empty scene, then the astronaut for a second, then a cup: 3 frames of each at 3 fps."""
    out = tmp_path_factory.mktemp("images")
    scenes = [data.coffee()] * 3 + [data.astronaut()] * 3 + [data.chelsea()] * 3
    for i, rgb in enumerate(scenes):
        cv2.imwrite(str(out / f"frame_{i}.jpg"), _photo(rgb))
    (out / "frame_9.jpg").write_bytes(b"\xff\xd8\xff broken")
    return out


def test_image_folder_replay_summary_and_outputs(
    app: typer.Typer, folder: Path, config_file: Path, tmp_path: Path
) -> None:
    out_mcap, out_video = tmp_path / "out.mcap", tmp_path / "out.mp4"
    result = CliRunner().invoke(
        app,
        ["replay", str(folder), "--config", str(config_file), "--fps", "3", "--fast",
         "--out-mcap", str(out_mcap), "--out-video", str(out_video)],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "frames read        │ 9" in out
    assert "Detections per class" in out and "person" in out and "cup" in out
    assert "1 sit" in out  # the rule fired on the astronaut
    assert "frame_9.jpg" in out and "not a decodable" in out  # the broken file, by name
    # The output recording has the new detections drawn on the original JPEG bytes.
    with open(out_mcap, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        schemas = {c.topic: summary.schemas[c.schema_id].name for c in summary.channels.values()}
        assert schemas["/camera/images/compressed"] == "foxglove.CompressedImage"
        assert schemas["/camera/images/annotations"] == "foxglove.ImageAnnotations"
        commands = [json.loads(m.data)["command"]["kind"]
                    for _, _, m in reader.iter_messages(topics=["/commands"])]
        assert "sit" in commands
        # Only the camera the folder has (not the config's), and no path of this machine.
        header = next(dict(m.metadata) for m in reader.iter_metadata()
                      if m.name == "spot_cue_agent.recording")
        assert header["cameras"] == "images"
        assert header["replay_of"] == folder.name and str(tmp_path) not in json.dumps(header)
        # Real times: the first image's modification time (not 1970), frames 1/3 s apart.
        stamps = [m.log_time / 1e9 for _, _, m in reader.iter_messages(topics=["/camera/images/compressed"])]
    first = (folder / "frame_0.jpg").stat().st_mtime
    assert stamps == pytest.approx([first + i / 3 for i in range(9)], abs=1e-6)
    video = cv2.VideoCapture(str(out_video))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 9
    video.release()


def test_video_replay_is_deterministic_and_paced(
    folder: Path, rules_file: Path, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (320, 240))
    for i in range(24):
        writer.write(_photo(data.astronaut() if 8 <= i < 16 else data.coffee()))
    writer.release()
    cfg = config_overrides(load_agent_config(CONFIG_DIR / "agent.yaml"), rules=rules_file,
                           **{"detector.num_threads": 1})
    fast = asyncio.run(replay(clip, cfg))
    again = asyncio.run(replay(clip, cfg))
    assert fast.mode == "frames"
    assert fast.summary.frames_processed == 24
    assert fast.commands == again.commands  # same input, same config: same commands, same times
    t0 = clip.stat().st_mtime - 24 / 10.0  # the video's real start: written until its end
    sit_times = [t - t0 for t, c in fast.commands if isinstance(c, Sit)]
    assert len(sit_times) == 1
    # Frame-accurate: the rule fires at a control tick after the 2nd astronaut frame (0.9 s).
    assert 0.9 <= sit_times[0] <= 1.1
    started = time.perf_counter()
    paced = asyncio.run(replay(clip, cfg, speed=4.0))
    assert time.perf_counter() - started >= 2.3 / 4.0 * 0.9  # 2.3 s of video at 4x
    assert paced.commands == fast.commands  # pacing changes nothing but wall time


def _record(path: Path, n: int) -> None:
    with Recorder(path, chunk_size=32 * 1024) as rec:
        for i in range(n):
            rgb = data.astronaut() if i % 2 else data.coffee()
            ok, jpeg = cv2.imencode(".jpg", _photo(rgb))
            assert ok
            t = 50.0 + i / 10
            rec.record_frame(Frame("frontleft_fisheye_image", cv2.imdecode(jpeg, cv2.IMREAD_COLOR),
                                   t, t, encoded=jpeg.tobytes(), seq=i))


def test_truncated_recording_replays_what_is_readable(
    app: typer.Typer, config_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "run.mcap"
    _record(path, 20)
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    result = CliRunner().invoke(app, ["replay", str(cut), "--config", str(config_file)],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Input problems" in result.output
    assert "file ends inside a chunk" in result.output
    assert "input complete     │ no" in result.output


def test_nothing_readable_exits_non_zero(app: typer.Typer, config_file: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(b"not a recording at all" * 100)
    result = CliRunner().invoke(app, ["replay", str(garbage), "--config", str(config_file)])
    assert result.exit_code == 1
    assert "not an MCAP file" in result.output
    magic_only = tmp_path / "magic.mcap"
    magic_only.write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 50)
    result = CliRunner().invoke(app, ["replay", str(magic_only), "--config", str(config_file)])
    assert result.exit_code == 1
    assert "nothing readable" in result.output
    result = CliRunner().invoke(app, ["replay", str(tmp_path / "missing.mp4"), "--config", str(config_file)])
    assert result.exit_code == 1
    assert "no such file" in result.output
