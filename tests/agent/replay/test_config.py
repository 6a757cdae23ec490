"""The configuration a recording carries and the one a replay chooses (agent/recording/metadata.py, agent/replay/config.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.config import config_overrides, load_agent_config
from agent.recording.metadata import KEY_CONFIG, KEY_MODEL_SHA256, KEY_PERSON_MODEL_SHA256, recording_metadata
from agent.replay.config import load_replay_rules, resolve_replay_config
from configs import SHIPPED_DIR
from configs.loading import ConfigError
from perception.config import PERSON_MODEL
from perception.model_set import calibration_for


@pytest.fixture
def sim_config(tmp_path: Path) -> object:
    """The shipped sim config with this machine's paths and a login in it, as a live run has."""
    rules = tmp_path / "my_rules.yaml"
    rules.write_text((SHIPPED_DIR / "rules" / "follow.yaml").read_text())
    ca = tmp_path / "ca.pem"
    ca.write_text("not really a CA")
    return config_overrides(load_agent_config(SHIPPED_DIR / "sim.yaml"), rules=rules,
                            **{"robot.ca_cert": ca, "robot.auth.password": "hunter2"})


def test_metadata_carries_the_config_without_paths_or_secrets(sim_config: object, tmp_path: Path) -> None:
    header = recording_metadata(sim_config, started_local=12.5)
    text = json.dumps(header)
    assert str(tmp_path) not in text and str(SHIPPED_DIR) not in text and "hunter2" not in text
    recorded = json.loads(header[KEY_CONFIG])
    assert recorded["rules"] == "my_rules.yaml" and recorded["robot"]["ca_cert"] == "ca.pem"
    assert header["rules_yaml"] == (SHIPPED_DIR / "rules" / "follow.yaml").read_text()


def test_replay_uses_the_embedded_config(sim_config: object) -> None:
    header = recording_metadata(sim_config, started_local=12.5)
    chosen = resolve_replay_config("run.mcap", header)
    try:
        assert chosen.warnings == [] and chosen.origin == "recorded in the file (rules my_rules.yaml)"
        for section in ("cameras", "safety"):
            assert getattr(chosen.config, section) == getattr(sim_config, section)
        # The detector as it ran: with the person model's score curves written out (the shipped
        # ones may be re-measured by a later release; the replay keeps the recorded ones).
        live = sim_config.detector  # type: ignore[attr-defined]
        replayed = chosen.config.detector
        assert replayed.person_model is not None and replayed.person_model.calibration
        assert replayed.model_copy(update={"person_model": live.person_model}) == live
        curves = calibration_for(live.person_model.model_path, PERSON_MODEL, None).curves
        assert {k: tuple(map(tuple, v)) for k, v in replayed.person_model.calibration.items()} == {
            k: c.knots for k, c in curves.items()}
        assert chosen.config.detector.tag_size_m == 0.2  # the sim's, not the shipped agent's 0.146
        rules = load_replay_rules(chosen, "run.mcap")
        assert [r.name for r in rules.rules] == [r.name for r in load_replay_rules(
            resolve_replay_config("x", None, config_arg=str(SHIPPED_DIR / "sim.yaml"),
                                  rules_arg="follow"), "x").rules]
    finally:
        chosen.close()


def test_overrides_and_old_recordings_are_said_loudly(sim_config: object) -> None:
    header = recording_metadata(sim_config, started_local=12.5)
    chosen = resolve_replay_config("run.mcap", header, config_arg="agent.yaml", rules_arg="fiducial")
    assert chosen.config.detector.tag_size_m == 0.146
    assert [w.split(",")[0] for w in chosen.warnings] == [
        "configuration from --config agent.yaml (shipped)", "rules from --rules rules/fiducial.yaml (shipped)"]
    old = {"pipeline_inputs": "1", "started_local": "1.0"}
    chosen = resolve_replay_config("old.mcap", old)
    assert chosen.origin == "shipped agent.yaml (shipped)"
    assert "the recording carries no configuration" in chosen.warnings[0]
    assert "header (its configuration) is missing or unreadable" in resolve_replay_config("x.mcap", {}).warnings[0]
    assert resolve_replay_config("clip.mp4", None).warnings == []  # a video has none to carry


def test_another_model_is_refused_unless_chosen(sim_config: object) -> None:
    header = recording_metadata(sim_config, started_local=12.5)
    header[KEY_MODEL_SHA256] = "0" * 64
    with pytest.raises(ConfigError, match="not the shipped one: pass --config"):
        resolve_replay_config("run.mcap", header)
    chosen = resolve_replay_config("run.mcap", header, config_arg="sim.yaml")
    assert any("is not the one run.mcap was recorded with" in w for w in chosen.warnings)


def test_bad_embedded_rules_name_the_recording(sim_config: object) -> None:
    header = recording_metadata(sim_config, started_local=12.5)
    header["rules_yaml"] = "rules: [{name: x, cue: nope, behavior: sit}]\n"
    chosen = resolve_replay_config("run.mcap", header)
    try:
        with pytest.raises(ConfigError, match=r"^run\.mcap \(recorded my_rules\.yaml\)"):
            load_replay_rules(chosen, "run.mcap")
    finally:
        chosen.close()


def test_a_recording_from_before_the_person_model_replays_without_it(sim_config: object) -> None:
    header = recording_metadata(sim_config, started_local=12.5)
    recorded = json.loads(header[KEY_CONFIG])
    del recorded["detector"]["person_model"]  # as every recording made before it existed
    header[KEY_CONFIG] = json.dumps(recorded)
    del header[KEY_PERSON_MODEL_SHA256]
    chosen = resolve_replay_config("old.mcap", header)
    try:
        assert chosen.config.detector.person_model is None
    finally:
        chosen.close()


def test_a_recording_with_another_person_model_needs_a_config(sim_config: object) -> None:
    header = recording_metadata(sim_config, started_local=12.5)
    header[KEY_PERSON_MODEL_SHA256] = "f" * 64
    with pytest.raises(ConfigError, match="person model"):
        resolve_replay_config("run.mcap", header)


def test_a_run_whose_detector_was_on_the_robots_bridge_needs_a_config_to_replay(sim_config: object) -> None:
    remote = config_overrides(sim_config, **{"detector.type": "network_compute_bridge"})
    header = recording_metadata(remote, started_local=12.5)
    with pytest.raises(ConfigError, match=r"run\.mcap: .*through the robot.*network_compute_bridge\.address"):
        resolve_replay_config("run.mcap", header)
    # A worker by address is called as in the run; a local detector needs nothing.
    by_address = recording_metadata(
        config_overrides(remote, **{"detector.network_compute_bridge.address": "10.0.0.5:50051"}), started_local=1.0)
    resolve_replay_config("run.mcap", by_address).close()
    resolve_replay_config("run.mcap", header, config_arg=str(SHIPPED_DIR / "sim.yaml")).close()
