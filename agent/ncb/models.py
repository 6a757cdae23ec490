"""The models a worker offers, and one perception slot that runs any of them.

A client names one model per request:
- `agent_perception`: exactly what the agent runs on a frame (every detector, calibrated and
  merged, the person model as its second stage, plus AprilTags);
- each detector of the config alone, by its file's stem (`nanodet_g_coco_int8`,
  `movenet_multipose_160_f16`): same preprocessing and calibrated scores, run on every image;
- `apriltag_36h11`: the fiducial finder alone.

A `PerceptionSlot` owns its interpreters (TFLite interpreters and the ArUco detector are not
thread-safe): the servicer keeps a fixed number of them and lends one to each request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from perception.config import DetectorConfig
from perception.detection import Detection, FiducialDetection
from perception.frame import Frame
from perception.model_set import DetectorModel, load_model_set
from perception.perceiver import Perceiver

AGENT_MODEL = "agent_perception"
FIDUCIAL_MODEL = "apriltag_36h11"
TAG_IDS = range(587)  # AprilTag 36h11 has 587 codes


@dataclass(frozen=True)
class OfferedModel:
    name: str
    labels: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class Found:
    """What one model found in one frame, in the original image's pixels."""

    detections: list[Detection]
    fiducials: list[FiducialDetection]


def _labels(model: DetectorModel) -> tuple[str, ...]:
    names: Sequence[str] = getattr(model.detector, "labels", ()) or ()
    return tuple(dict.fromkeys(n for n in names if n and n != "???"))


def offered_models(config: DetectorConfig, models: Sequence[DetectorModel]) -> list[OfferedModel]:
    """Every model a client may ask for, with the labels it can return."""
    tags = tuple(f"tag:{i}" for i in TAG_IDS) if config.fiducials else ()
    every = tuple(dict.fromkeys(label for m in models for label in _labels(m))) + tags
    out = [OfferedModel(AGENT_MODEL, every, "the agent's perception: every model merged, plus AprilTags")]
    out += [OfferedModel(m.name, _labels(m), f"detector {m.name} alone (calibrated scores)") for m in models]
    if config.fiducials:
        out.append(OfferedModel(FIDUCIAL_MODEL, tags, "AprilTag 36h11 fiducials"))
    return out


class PerceptionSlot:
    """One set of interpreters: the agent's Perceiver and each of its detectors alone."""

    def __init__(self, config: DetectorConfig) -> None:
        models = load_model_set(config)
        self.config = config
        self.offered = offered_models(config, models)
        self.agent = Perceiver(config, models=models)
        # Asked for by name, a detector runs on every image: no second-stage gate, no camera skip.
        self.single = {
            m.name: Perceiver(config, models=[dataclasses.replace(m, second_stage=None, skip_cameras=frozenset())],
                              fiducials=self.agent.fiducials)
            for m in models
        }

    def run(self, model: str, frame: Frame, rotation_deg: float) -> Found:
        """`model` on `frame` turned upright by `rotation_deg`; KeyError for an unknown model."""
        if model == AGENT_MODEL:
            return Found(self.agent.detect_objects(frame, rotation_deg), self.agent.find_fiducials(frame))
        if model == FIDUCIAL_MODEL and self.agent.fiducials is not None:
            return Found([], self.agent.find_fiducials(frame))
        return Found(self.single[model].detect_objects(frame, rotation_deg), [])
