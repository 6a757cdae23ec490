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
from typing import Any

import pytest
from mcap.reader import make_reader
from support.cli import command_app

from agent.demo import sim_agent_config
from agent.replay.command import EXIT_COMMANDS_DIFFER
from agent.replay.runner import replay
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
    # Every frame is detected, except one whose camera lagged the other by more than
    # `max_frame_age_s` in the live run (stale live, stale on replay: a property of the file).
    stale = first.report.stats["dropped_stale"]
    assert first.summary.frames_processed + stale == first.read.frames > 50 and stale <= 3
    again = asyncio.run(replay(path, cfg, mode="frames"))
    assert again.commands == first.commands and again.summary.frames_processed == first.summary.frames_processed
    assert first.summary.per_class["tag:1"] > 20
    assert any(isinstance(c, GoTo) for _, c in first.commands)


def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from agent.fleet.command import replay_command

    app = command_app("replay", replay_command)
    return CliRunner().invoke(app, ["replay", *args], terminal_width=250)


def test_recording_carries_its_configuration_without_machine_paths(
    live_run: tuple[Path, object, object],
) -> None:
    """The recording holds the validated config and the rules' text, never this machine's paths
    nor the robot's login."""
    from agent.recording.metadata import KEY_CONFIG, KEY_MODEL_SHA256, KEY_RULES_YAML
    from perception.config import DEFAULT_MODEL_SHA256

    path, cfg, _ = live_run
    with open(path, "rb") as f:
        reader = make_reader(f)
        metadata = {m.name: dict(m.metadata) for m in reader.iter_metadata()}
        texts = [m.data.decode() for _, ch, m in reader.iter_messages() if ch.message_encoding == "json"]
    header = metadata["spot_cue_agent.recording"]
    assert header[KEY_RULES_YAML] == (CONFIG_DIR / "rules" / "fiducial.yaml").read_text()
    assert header[KEY_MODEL_SHA256] == DEFAULT_MODEL_SHA256
    recorded = json.loads(header[KEY_CONFIG])
    assert recorded["detector"]["tag_size_m"] == 0.2  # the sim config's, not the shipped agent's
    assert recorded["robot"]["auth"]["password"] is None
    everything = json.dumps(metadata) + "".join(texts)
    for machine_path in {str(CONFIG_DIR), str(path.parent), str(Path.home()), str(cfg.robot.ca_cert)}:
        assert machine_path not in everything


def test_cli_replays_with_the_recorded_configuration(live_run: tuple[Path, object, object]) -> None:
    """Regression: replay used the shipped agent config (0.146 m tags), so the live sim run's
    distances came out 3 m instead of 4 m and the commands differed, with exit code 0."""
    path, _, _ = live_run
    result = _cli(str(path))
    assert result.exit_code == 0, result.output
    assert "recorded in the file (rules fiducial.yaml)" in result.output
    assert "same commands in the same order" in result.output and "WARNING" not in result.output


def test_replay_with_other_rules_differs_and_exits_non_zero(
    live_run: tuple[Path, object, object], tmp_path: Path
) -> None:
    path, _, _ = live_run
    rules = tmp_path / "sit_at_tag.yaml"
    rules.write_text(
        "cues:\n  tag_1: {label: 'tag:1', persistence: {seen_in: 2, of_last: 3}}\n"
        "rules:\n  - {name: sit_at_tag, cue: tag_1, behavior: sit, priority: 60}\n"
    )
    result = _cli(str(path), "--rules", str(rules))
    assert result.exit_code == EXIT_COMMANDS_DIFFER == 6, result.output
    assert "WARNING: rules from --rules" in result.output and "NOT the ones recorded" in result.output
    assert "differ from the live run's: #" in result.output  # the first difference, spelled out
    # The case: the shipped agent config (another tag size) makes other goals.
    result = _cli(str(path), "--config", "agent.yaml")
    assert result.exit_code == EXIT_COMMANDS_DIFFER, result.output
    assert "WARNING: configuration from --config agent.yaml (shipped), NOT the one recorded" in result.output


def test_a_live_run_with_operator_launches_replays_to_the_same_commands(tmp_path: Path) -> None:
    """Operator launch, pause, stop and resume go through the pipeline and into the recording;
    replay gives them to the engine again at their times: same commands as live."""
    path = tmp_path / "operated.mcap"
    sim = SimServer.start(scenario=CONFIG_DIR / "scenarios" / "fiducial_ahead.yaml", port=0)

    async def operate(pipeline: Any) -> None:
        await asyncio.sleep(3.0)  # the tag rule has started walking
        await pipeline.pause_cues()
        await pipeline.launch("go_to_fiducial", {"tag_id": 1, "distance_m": 1.5})
        await asyncio.sleep(1.5)
        await pipeline.stop_now("operator pressed stop")
        await asyncio.sleep(0.5)
        await pipeline.launch("sit", {})
        await asyncio.sleep(1.0)
        await pipeline.resume_cues()

    async def live() -> Any:
        tasks: list[asyncio.Task[None]] = []
        run = run_agent(cfg, duration_s=8.0, stop_on_signals=False, record=path,
                        on_pipeline=lambda p: tasks.append(asyncio.create_task(operate(p))))
        result = await run
        await asyncio.gather(*tasks)
        return result

    try:
        cfg = sim_agent_config(sim, rules=CONFIG_DIR / "rules" / "fiducial.yaml")
        result = asyncio.run(live())
    finally:
        sim.stop()
    kinds = [c.kind for _, c in result.report.commands]
    assert kinds[-2:] == ["sit", "stop"] or "sit" in kinds, kinds  # the operator's sit happened
    replayed = asyncio.run(replay(path, cfg))
    assert replayed.live is not None and replayed.live.operator_inputs == 5
    assert replayed.live.unreproducible == []
    assert replayed.comparison is not None and replayed.comparison.matches, (
        replayed.comparison.first_difference)
    assert [c.kind for _, c in replayed.commands] == kinds
