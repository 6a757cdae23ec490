"""What one side of an evaluation runs: the detector config, the thresholds the agent acts at,
and the files (with their sha256s) that decide the numbers, so a report says what it measured."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perception.config import DetectorConfig


@dataclass
class Subject:
    name: str  # "A" / "B"
    detector: DetectorConfig
    thresholds: dict[str, tuple[float, str]]  # label -> (threshold, where it comes from)
    files: dict[str, Any]  # what the report.json records about the config, rules and models
    model_labels: list[str]  # every label its models can output

    def threshold_for(self, label: str) -> tuple[float, str]:
        return self.thresholds.get(label, (self.detector.score_threshold, "detector.score_threshold"))


def load_subject(name: str, config: str, model: Path | None, labels: Path | None) -> Subject:
    """The agent config `config` (a file or a shipped name), its detector model replaced by
    `model` (and `labels`) when given. Raises `ConfigError` naming the file and the field."""
    import configs
    from agent.config import load_agent_config
    from behaviors.config import load_rules
    from configs.loading import ConfigError

    config_path = configs.find(config)
    agent = load_agent_config(config_path)
    detector = agent.detector
    if model is not None:
        if not model.is_file():
            raise ConfigError(f"--model {model}: no such file")
        detector = detector.model_copy(update={"model": model.resolve(), "model_sha256": None,
                                               "labels": labels.resolve() if labels else None})
    elif labels is not None:
        raise ConfigError("--labels needs --model: a labels file belongs to a model")
    if labels is not None and not labels.is_file():
        raise ConfigError(f"--labels {labels}: no such file")
    known = _model_labels(detector)
    rules = load_rules(agent.rules, known_labels=known, cameras=agent.cameras.sources)
    thresholds: dict[str, tuple[float, str]] = {}
    for cue_name, cue in sorted(rules.cues.items()):
        if cue.is_tag:
            continue
        old = thresholds.get(cue.label)
        if old is None or cue.min_score < old[0]:
            thresholds[cue.label] = (cue.min_score, f"rules: {cue_name}.min_score")
    return Subject(name, detector, thresholds, _files(config_path, agent.rules, detector), known)


def _model_labels(detector: DetectorConfig) -> list[str]:
    """The labels of the models the config names, loaded once here so a bad model is a setup
    error (exit 2) before any worker starts. `ConfigError` with the reason otherwise."""
    from agent.eval.inference import eval_config
    from configs.loading import ConfigError
    from perception.decoders import UnsupportedModelError
    from perception.detector import ModelIntegrityError, NoInterpreterError
    from perception.perceiver import Perceiver

    try:
        perceiver = Perceiver(eval_config(detector))
    except (UnsupportedModelError, ModelIntegrityError, NoInterpreterError, OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the model {detector.model_path}: {exc}") from exc
    return [label for m in perceiver.models for label in getattr(m.detector, "labels", [])]


def _files(config_path: Path, rules: Path, detector: DetectorConfig) -> dict[str, Any]:
    from agent.recording.metadata import file_sha256

    models: list[dict[str, Any]] = [{"role": "detector", "path": str(detector.model_path), "sha256": file_sha256(detector.model_path)}]
    if detector.person_model is not None:
        p = detector.person_model.model_path
        models.append({"role": "person_model", "path": str(p), "sha256": file_sha256(p),
                       "cameras": detector.person_model.cameras})
    return {"config": str(config_path), "config_sha256": file_sha256(config_path),
            "rules": str(rules), "rules_sha256": file_sha256(rules), "models": models,
            "score_threshold": detector.score_threshold}
