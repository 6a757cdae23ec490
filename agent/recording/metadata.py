"""What a recording says about itself: the metadata record written first in every segment.

A recording made by `spot-agent run --record` (or `replay --out-mcap`) embeds everything that
decides the agent's commands: the validated agent config, the rules file's text and the detector
model's sha256 (and a custom labels file's text), so `spot-agent replay` can run with the very
same configuration anywhere (`agent.replay.config`). Nothing machine-specific goes in: paths
are reduced to file names and credentials are removed, so a recording can be handed to anyone.

The config is taken as it is given (`agent.config.AgentConfig`, a pydantic model); this layer
sits below the application and does not import it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

KEY_CONFIG = "agent_config"  # JSON: AgentConfig with paths as file names, credentials removed
KEY_RULES_YAML = "rules_yaml"  # the rules file's text
KEY_RULES_NAME = "rules_name"
KEY_MODEL_NAME = "detector_model"
KEY_MODEL_SHA256 = "detector_model_sha256"
KEY_LABELS_TEXT = "detector_labels_text"  # a custom labels file's text (absent: the model's own)
KEY_PERSON_MODEL_SHA256 = "person_model_sha256"  # absent: no person model (or before there was one)

# Fields that never go into a recording (the robot's login; replay has no robot).
_SECRET_FIELDS = {"username", "password", "secret", "token"}


def recording_metadata(
    config: Any,
    started_local: float,
    cameras: list[str] | None = None,
    *,
    replay_of: str | Path | None = None,
    mode: str | None = None,
) -> dict[str, str]:
    """The metadata a recording of the pipeline starts with: the configuration it runs with
    (`embedded_config`) and, by default, the config's cameras (a replay passes the cameras it
    actually has). A replay's recording also says what it replayed (`replay_of`: by file name,
    never this machine's path) and how (`mode`)."""
    entries = {
        "pipeline_inputs": "1",  # engine inputs recorded: `replay` can reproduce the commands
        "started_local": repr(started_local),
        "tick_hz": repr(config.safety.tick_hz),
        "cameras": ",".join(config.cameras.sources if cameras is None else cameras),
        **embedded_config(config),
    }
    if replay_of is not None:
        entries["replay_of"] = Path(replay_of).name
    if mode is not None:
        entries["mode"] = mode
    return entries


def embedded_config(config: Any) -> dict[str, str]:
    """The metadata entries that let a replay run with `config` (an `AgentConfig`) anywhere:
    no paths, no secrets."""
    detector = config.detector
    data = _portable(config, config.model_dump(mode="json"))
    entries = {
        KEY_RULES_NAME: config.rules.name,
        KEY_MODEL_NAME: detector.model_path.name,
        KEY_MODEL_SHA256: file_sha256(detector.model_path) or "unreadable",
    }
    if detector.person_model is not None:
        entries[KEY_PERSON_MODEL_SHA256] = file_sha256(detector.person_model.model_path) or "unreadable"
        # The score curves in force, not "the shipped ones": a later release may measure new ones.
        data["detector"]["person_model"]["calibration"] = _curves_in_force(detector)
    entries[KEY_CONFIG] = json.dumps(data, sort_keys=True)
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


def _curves_in_force(detector: Any) -> dict[str, list[list[float]]]:
    from perception.config import PERSON_MODEL
    from perception.model_set import calibration_for

    person = detector.person_model
    calibration = calibration_for(person.model_path, PERSON_MODEL, person.calibration)
    return {label: [list(k) for k in curve.knots] for label, curve in calibration.curves.items()}


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


def recording_header(path: Path) -> dict[str, str] | None:
    """The metadata a recording's writer put first; None for anything but an MCAP file (and {}
    for an MCAP file without it)."""
    from agent.recording import format as fmt  # the reader's modules, only when reading
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
