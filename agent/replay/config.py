"""The configuration a replay runs with: by default the one its recording carries.

A recording made by `spot-agent run --record` (or `replay --out-mcap`) embeds, in its first
metadata record, everything that decides the agent's commands (`agent.recording.metadata`: the
validated agent config, the rules file's text, the detector model's sha256, a custom labels
file's text), without paths of the machine it was made on or credentials.

`spot-agent replay` runs with that embedded configuration by default; `--config` / `--rules`
replace it, and the summary says so loudly. A recording made before configurations were
embedded replays with the shipped agent config, also said loudly. The model is matched by its
sha256: a replay refuses a model other than the recorded one unless `--config` chose it.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

import configs
from agent.config import AgentConfig, load_agent_config
from agent.recording.metadata import (
    KEY_CONFIG,
    KEY_LABELS_TEXT,
    KEY_MODEL_NAME,
    KEY_MODEL_SHA256,
    KEY_PERSON_MODEL_SHA256,
    KEY_RULES_NAME,
    KEY_RULES_YAML,
    file_sha256,
)
from configs.loading import ConfigError, format_validation_error

# The sections of a recorded config that decide commands (the robot and control sections
# describe a connection replay does not make, so a change in their schema cannot block a replay).
_REPLAYED_SECTIONS = ("cameras", "detector", "rules", "safety")


@dataclass
class ReplayConfig:
    """The config a replay runs with and where it came from, for the summary."""

    config: AgentConfig
    origin: str  # one line: where the configuration came from
    warnings: list[str] = field(default_factory=list)  # shown loudly: not the recorded config
    _files: tempfile.TemporaryDirectory[str] | None = None  # embedded rules/labels, as files

    def close(self) -> None:
        if self._files is not None:
            self._files.cleanup()
            self._files = None


def _materialise(files: tempfile.TemporaryDirectory[str], name: str, text: str) -> Path:
    path = Path(files.name) / (Path(name).name or "embedded.yaml")
    path.write_text(text, encoding="utf-8")
    return path


def _recorded_config(
    header: dict[str, str], source: str, files: tempfile.TemporaryDirectory[str]
) -> AgentConfig:
    """The AgentConfig recorded in `header`, with its rules (and labels) as real files."""
    try:
        recorded = json.loads(header[KEY_CONFIG])
        if not isinstance(recorded, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise ConfigError(f"{source}: the recorded configuration is damaged ({exc}); pass --config") from exc
    if KEY_RULES_YAML not in header:
        raise ConfigError(f"{source}: the recording holds no rules text; pass --rules")
    data = {key: recorded[key] for key in _REPLAYED_SECTIONS if key in recorded}
    rules_name = header.get(KEY_RULES_NAME, "rules.yaml")
    data["rules"] = str(_materialise(files, rules_name, header[KEY_RULES_YAML]))
    detector = dict(data.get("detector") or {})
    from perception.config import DEFAULT_MODEL_SHA256

    if header.get(KEY_MODEL_SHA256) == DEFAULT_MODEL_SHA256:
        detector["model"] = None  # the shipped model, wherever this install keeps it
    else:
        raise ConfigError(
            f"{source}: recorded with the model {header.get(KEY_MODEL_NAME)} (sha256 "
            f"{header.get(KEY_MODEL_SHA256)}), not the shipped one: pass --config with a config "
            "whose detector.model is that file"
        )
    _recorded_person_model(detector, header, source)
    labels = header.get(KEY_LABELS_TEXT)
    detector["labels"] = str(_materialise(files, "labels.txt", labels)) if labels is not None else None
    data["detector"] = detector
    try:  # as JSON: what JSON cannot hold (int keys, tuples) is read back the way pydantic wrote it
        return AgentConfig.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(f"{source} (recorded configuration)", exc)) from exc


def _recorded_person_model(detector: dict[str, Any], header: dict[str, str], source: str) -> None:
    """The recorded person model, as the shipped one; a recording made before there was one ran
    the COCO detector alone, and so does its replay."""
    from perception.config import PERSON_MODEL_SHA256

    if "person_model" not in detector:
        detector["person_model"] = None
    elif detector["person_model"] is not None:
        if header.get(KEY_PERSON_MODEL_SHA256) != PERSON_MODEL_SHA256:
            raise ConfigError(
                f"{source}: recorded with a person model (sha256 {header.get(KEY_PERSON_MODEL_SHA256)}) "
                "that is not the shipped one: pass --config with a config whose "
                "detector.person_model.model is that file"
            )
        detector["person_model"] = {**detector["person_model"], "model": None}


def _check_model(
    config: AgentConfig, header: dict[str, str], source: str, chosen: bool, warnings: list[str]
) -> None:
    """Refuse (recorded config) or warn (a config the user chose) when the model differs."""
    recorded = header.get(KEY_MODEL_SHA256)
    if not recorded:
        return
    actual = file_sha256(config.detector.model_path)
    person = config.detector.person_model
    person_actual = file_sha256(person.model_path) if person is not None else None
    what = None
    if actual != recorded:
        what = (f"the model {config.detector.model_path.name} (sha256 {actual}) is not the one "
                f"{source} was recorded with ({header.get(KEY_MODEL_NAME)}, sha256 {recorded})")
    elif person_actual != header.get(KEY_PERSON_MODEL_SHA256):
        what = (f"the person model (sha256 {person_actual}) is not the one {source} was recorded "
                f"with (sha256 {header.get(KEY_PERSON_MODEL_SHA256)})")
    if what is None:
        return
    if not chosen:
        raise ConfigError(f"{what}; pass --config to replay with another model anyway")
    warnings.append(f"{what}: detections and commands will differ")


def resolve_replay_config(
    source: str,
    header: dict[str, str] | None,
    config_arg: str | None = None,
    rules_arg: str | None = None,
) -> ReplayConfig:
    """The configuration to replay `source` with. `header`: its recording metadata (None for
    videos and folders). Raises `ConfigError` naming the file and the field."""
    warnings: list[str] = []
    files: tempfile.TemporaryDirectory[str] | None = None
    recorded = header is not None and KEY_CONFIG in header
    try:
        if config_arg is not None:
            path = configs.find(config_arg)
            config = load_agent_config(path)
            origin = f"--config {configs.display(path)}"
            if recorded:
                warnings.append(f"configuration from --config {configs.display(path)}, NOT the one "
                                "recorded in the file")
        elif recorded:
            assert header is not None
            files = tempfile.TemporaryDirectory(prefix="spot-agent-replay-")
            config = _recorded_config(header, source, files)
            origin = f"recorded in the file (rules {header.get(KEY_RULES_NAME)})"
        else:
            path = configs.shipped("agent")
            config = load_agent_config(path)
            origin = f"shipped {configs.display(path)}"
            if header is not None and header.get("pipeline_inputs") == "1":
                warnings.append("the recording carries no configuration (made by an older version): "
                                f"replaying with the shipped {configs.display(path)}; pass --config "
                                "with the one it ran with")
            elif header == {}:
                warnings.append("the recording's header (its configuration) is missing or unreadable: "
                                f"replaying with the shipped {configs.display(path)}")
        if rules_arg is not None:
            rules = configs.find(rules_arg, configs.RULES)
            config = config.model_copy(update={"rules": rules})
            origin += f", rules from --rules {configs.display(rules)}"
            if recorded:
                warnings.append(f"rules from --rules {configs.display(rules)}, NOT the ones "
                                "recorded in the file")
        if header is not None:
            _check_model(config, header, source, config_arg is not None, warnings)
        _check_remote_detector(config, source, origin)
    except BaseException:
        if files is not None:
            files.cleanup()
        raise
    return ReplayConfig(config, origin, warnings, files)


def _check_remote_detector(config: Any, source: str, origin: str) -> None:
    """A detector reached through the robot's bridge has no robot in a replay: say so up front
    (a worker by address is called as in the run, and must be up)."""
    detector = config.detector
    if detector.type == "network_compute_bridge" and detector.network_compute_bridge.address is None:
        raise ConfigError(
            f"{source}: the configuration ({origin}) runs the detector on a Network Compute Bridge worker "
            f"through the robot ('{detector.network_compute_bridge.service}'), and a replay has no robot: "
            "pass --config with detector.network_compute_bridge.address (the worker's host:port) or a "
            "local detector (type: tflite)"
        )


def load_replay_rules(replay_config: ReplayConfig, source: str) -> Any:
    """The replay's rules, validated; errors in embedded rules name the recording, not a temp file."""
    from behaviors.config import load_rules

    rules_path = replay_config.config.rules
    try:
        return load_rules(rules_path)
    except ConfigError as exc:
        if replay_config._files is not None and rules_path.is_relative_to(replay_config._files.name):
            raise ConfigError(str(exc).replace(str(rules_path), f"{source} (recorded {rules_path.name})")) from None
        raise
