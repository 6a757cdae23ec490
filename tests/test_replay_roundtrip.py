"""Record a live run on the simulated Spot, replay it, get the same commands.

The agent runs exactly as `spot-agent run --record` runs it (real TLS gRPC to the sim, real
detector, two detector workers, latest-wins frames), walking to a tag and sitting. Replaying
the recording with the same config must give the same commands in the same order with the same
parameters, and the recording must open with the `mcap` reader with Foxglove's schemas.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from mcap.reader import make_reader

from agent.demo import sim_agent_config
from agent.replay import replay
from agent.run import run_agent
from behaviors.commands import GoTo, Sit, Stand, command_from_dict
from configs import SHIPPED_DIR as CONFIG_DIR
from sim.server import SimServer

pytestmark = pytest.mark.slow

CAMERAS = ["frontleft_fisheye_image", "frontright_fisheye_image"]


@pytest.fixture(scope="module")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, object]:
    path = tmp_path_factory.mktemp("rec") / "fiducial_run.mcap"
    sim = SimServer.start(scenario=CONFIG_DIR / "scenarios" / "fiducial_ahead.yaml", port=0)
    try:
        cfg = sim_agent_config(sim, rules=CONFIG_DIR / "rules" / "fiducial.yaml")
        result = asyncio.run(run_agent(cfg, duration_s=8.0, stop_on_signals=False, record=path))
    finally:
        sim.stop()
    return path, cfg, result


def test_recording_has_foxglove_channels_and_schemas(live_run: tuple[Path, object, object]) -> None:
    path, _, result = live_run
    with open(path, "rb") as f:
        reader = make_reader(f)
        summary = reader.get_summary()
        assert summary is not None
        schema_of = {c.topic: summary.schemas[c.schema_id].name for c in summary.channels.values()}
        for camera in CAMERAS:
            assert schema_of[f"/camera/{camera}/compressed"] == "foxglove.CompressedImage"
            assert schema_of[f"/camera/{camera}/annotations"] == "foxglove.ImageAnnotations"
            assert schema_of[f"/camera/{camera}/meta"] == "spot_cue_agent.FrameMeta"
        for topic, schema in [
            ("/detections", "spot_cue_agent.ObservedResult"),
            ("/pipeline/steps", "spot_cue_agent.ControlStep"),
            ("/robot/status", "spot_cue_agent.RobotStatus"),
            ("/events", "spot_cue_agent.EngineEvent"),
            ("/commands", "spot_cue_agent.Command"),
        ]:
            assert schema_of[topic] == schema
        # The robot's JPEG bytes with the camera's intrinsics and transforms.
        meta = next(json.loads(m.data) for _, _, m in reader.iter_messages(
            topics=[f"/camera/{CAMERAS[0]}/meta"]))
        assert meta["intrinsics"]["fx"] > 0 and meta["transforms_snapshot_b64"]
        assert set(meta["transforms"]) >= {"body_tform_camera", "odom_tform_camera"}
        recorded = [command_from_dict(json.loads(m.data)["command"])
                    for _, _, m in reader.iter_messages(topics=["/commands"])]
        assert recorded == [c for _, c in result.report.commands]  # every command sent


def test_replay_gives_the_live_runs_commands(live_run: tuple[Path, object, object]) -> None:
    path, cfg, result = live_run
    live = list(result.report.commands)
    kinds = [c.kind for _, c in live]
    # The live run did something worth reproducing: stand, walk to the tag (and sit, when the
    # machine was fast enough to get there within the run).
    assert kinds[0] == "stand" and kinds.count("goto") >= 3
    replayed = asyncio.run(replay(path, cfg))
    assert replayed.mode == "recorded-run"
    assert replayed.read.complete, replayed.read.problems
    assert replayed.live.missing_frames == 0 and replayed.live.unreproducible == []
    # Same commands, same order, same parameters (bit for bit: same frames, same detector,
    # same observation and step times, same robot statuses).
    assert [c for _, c in replayed.commands] == [c for _, c in live]
    comparison = replayed.comparison
    assert comparison is not None and comparison.same_kinds_in_order
    assert comparison.max_param_diff == 0.0
    # Each command at the time of the live step that decided it (live command times are taken
    # after the gRPC call returns, so the recording keeps the step times for this); only the
    # final Stop's time is estimated (the run's end is not a step).
    issued = [t for t, c in zip(replayed.live.issued_at, replayed.live.commands) if c.outcome == "sent"]
    assert [t for t, _ in replayed.commands][:-1] == issued[:-1]
    assert comparison.max_time_diff_s < 0.25
    assert isinstance(replayed.commands[0][1], Stand)
    assert any(isinstance(c, GoTo) for _, c in replayed.commands)
    assert any(isinstance(c, Sit) for _, c in replayed.commands) == ("sit" in kinds)
    # And replaying again gives exactly the same (deterministic, whatever the machine's speed).
    again = asyncio.run(replay(path, cfg))
    assert again.commands == replayed.commands


def test_frame_by_frame_replay_of_a_live_recording(live_run: tuple[Path, object, object]) -> None:
    """Every recorded frame, ticks on recorded time: the way to test a new model or rules."""
    path, cfg, _ = live_run
    first = asyncio.run(replay(path, cfg, mode="frames"))
    assert first.mode == "frames"
    assert first.summary.frames_processed == first.read.frames > 50
    assert first.summary.per_class["tag:1"] > 20
    assert any(isinstance(c, GoTo) for _, c in first.commands)
