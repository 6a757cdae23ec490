"""The configuration a recording carries, and the one a replay runs with.

A recording made by `spot-agent run --record` (or `replay --out-mcap`) embeds, in its first
metadata record, everything that decides the agent's commands: the validated agent config, the
rules file's text and the detector model's sha256 (and a custom labels file's text). Nothing
machine-specific goes in: paths are reduced to file names and credentials are removed, so a
recording can be handed to anyone.

`spot-agent replay` runs with that embedded configuration by default; `--config` / `--rules`
replace it, and the summary says so loudly. A recording made before configurations were
embedded replays with the shipped agent config, also said loudly. The model is matched by its
sha256: a replay refuses a model other than the recorded one unless `--config` chose it.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

import configs
from agent.config import AgentConfig, load_agent_config
from configs.loading import ConfigError, format_validation_error

KEY_CONFIG = "agent_config"  # JSON: AgentConfig with paths as file names, credentials removed
KEY_RULES_YAML = "rules_yaml"  # the rules file's text
KEY_RULES_NAME = "rules_name"
KEY_MODEL_NAME = "detector_model"
KEY_MODEL_SHA256 = "detector_model_sha256"
KEY_LABELS_TEXT = "detector_labels_text"  # a custom labels file's text (absent: the model's own)

# Fields that never go into a recording (the robot's login; replay has no robot).
_SECRET_FIELDS = {"username", "password", "secret", "token"}
# The sections of a recorded config that decide commands (the robot and control sections
# describe a connection replay does not make, so a change in their schema cannot block a replay).
_REPLAYED_SECTIONS = ("cameras", "detector", "rules", "safety")


def recording_header(path: Path) -> dict[str, str] | None:
    """The metadata a recording's writer put first; None for anything but an MCAP file (and {}
    for an MCAP file without it)."""
    from agent.recording import format as fmt
    from agent.recording.salvage import MCAP_MAGIC, ScanResult, scan_messages

    if not path.is_file():  # regular files only: opening a FIFO would block
        return None
    with open(path, "rb") as f:
        if f.read(len(MCAP_MAGIC)) != MCAP_MAGIC:
            return None
    scan = ScanResult()
    for _ in scan_messages(path, scan):  # metadata comes first; one message is plenty
        break
    return scan.metadata.get(fmt.RECORDING_METADATA, {})


def file_sha256(path: Path) -> str | None:
    """The file's sha256 (hex), or None if it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _portable(model: BaseModel, data: dict[str, Any]) -> dict[str, Any]:
    """`data` (model's JSON dump) with every path reduced to its file name and secrets removed."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, Path):
            data[name] = value.name
        elif isinstance(value, BaseModel) and isinstance(data.get(name), dict):
            _portable(value, data[name])
        elif name in _SECRET_FIELDS and data.get(name) is not None:
            data[name] = None
    return data


def embedded_config(config: AgentConfig) -> dict[str, str]:
    """The metadata entries that let a replay run with `config` anywhere (no paths, no secrets)."""
    detector = config.detector
    entries = {
        KEY_CONFIG: json.dumps(_portable(config, config.model_dump(mode="json")), sort_keys=True),
        KEY_RULES_NAME: config.rules.name,
        KEY_MODEL_NAME: detector.model_path.name,
        KEY_MODEL_SHA256: file_sha256(detector.model_path) or "unreadable",
    }
    try:
        entries[KEY_RULES_YAML] = config.rules.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        pass  # the run loaded its rules from this file already; a reader says they are missing
    if detector.labels is not None:
        try:
            entries[KEY_LABELS_TEXT] = detector.labels.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            pass
    return entries


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
    labels = header.get(KEY_LABELS_TEXT)
    detector["labels"] = str(_materialise(files, "labels.txt", labels)) if labels is not None else None
    data["detector"] = detector
    try:  # as JSON: what JSON cannot hold (int keys, tuples) is read back the way pydantic wrote it
        return AgentConfig.model_validate_json(json.dumps(data))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(f"{source} (recorded configuration)", exc)) from exc


def _check_model(
    config: AgentConfig, header: dict[str, str], source: str, chosen: bool, warnings: list[str]
) -> None:
    """Refuse (recorded config) or warn (a config the user chose) when the model differs."""
    recorded = header.get(KEY_MODEL_SHA256)
    if not recorded:
        return
    actual = file_sha256(config.detector.model_path)
    if actual == recorded:
        return
    what = (f"the model {config.detector.model_path.name} (sha256 {actual}) is not the one "
            f"{source} was recorded with ({header.get(KEY_MODEL_NAME)}, sha256 {recorded})")
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
    except BaseException:
        if files is not None:
            files.cleanup()
        raise
    return ReplayConfig(config, origin, warnings, files)


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
