"""The detectors a `DetectorConfig` names, each with its score calibration and its cameras.

The COCO detector runs on every camera; the person model (if configured) on its cameras. Each
model is told to keep boxes down to the raw score that calibrates to the config's threshold, so
the merge (`perception.combine`) sees every box that could pass on the shared scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from configs.loading import StrictModel, read_yaml, validate_config
from perception.boxes import Box, mostly_inside
from perception.calibration import ScoreCalibration
from perception.config import (
    DEFAULT_LABELS,
    DEFAULT_MODEL,
    PERSON_MODEL,
    SHIPPED_CALIBRATION,
    SPOT_BODY_CAMERAS,
    Calibration,
    DetectorConfig,
    PersonModelConfig,
    read_labels,
)
from perception.detection import Detection
from perception.detector import Detector, TFLiteDetector
from perception.network_compute import ComputeCall, NetworkComputeDetector, worker_call


@dataclass(frozen=True)
class DetectorModel:
    """One detector with what the perceiver needs to combine it with the others."""

    name: str
    detector: Detector
    calibration: ScoreCalibration = field(default_factory=ScoreCalibration)
    skip_cameras: frozenset[str] = frozenset()  # cameras it does not run on
    # A second stage runs only when an earlier model left a person in this score band unresolved.
    second_stage: tuple[float, float] | None = None

    def watches(self, camera: str) -> bool:
        return camera not in self.skip_cameras

    def wanted(self, found: Sequence[Detection]) -> bool:
        """Whether to run on a frame in which the earlier models found `found` (calibrated)."""
        return self.second_stage is None or bool(self.unresolved(found))

    def unresolved(self, found: Sequence[Detection]) -> list[Box]:
        """The boxes of the people in `found` that a second stage is for, likeliest first: scoring
        in its band and not covered by a surer person (none without a second stage)."""
        if self.second_stage is None:
            return []
        low, high = self.second_stage
        people = [d for d in found if d.label == "person"]
        certain = [d.box for d in people if d.score >= high]
        unsure = [d for d in people if low <= d.score < high and not mostly_inside(d.box, certain)]
        return [d.box for d in sorted(unsure, key=lambda d: -d.score)]

    @property
    def input_size(self) -> tuple[int, int] | None:
        size: tuple[int, int] | None = getattr(self.detector, "input_size", None)
        return size

    def input_size_for(self, width: int, height: int) -> tuple[int, int] | None:
        """The input (width, height) the detector runs an image of this size at (a detector with a
        portrait twin has two), or None when it takes any size."""
        sized = getattr(self.detector, "input_size_for", None)
        return sized(width, height) if sized is not None else self.input_size


def load_model_set(config: DetectorConfig, bridge: ComputeCall | None = None) -> list[DetectorModel]:
    """The COCO detector (every camera) and, if configured, the person model (its cameras); or,
    for `type: network_compute_bridge`, the remote model (through `bridge`, the robot's bridge,
    unless the config gives the worker's address)."""
    if config.type == "network_compute_bridge":
        return [_remote_model(config, bridge)]
    main_calibration = calibration_for(config.model_path, DEFAULT_MODEL, config.calibration)
    keep = main_calibration.raw_threshold(config.score_threshold)
    person = config.person_model
    if person is not None and person.second_stage is not None:
        # The COCO detector must report the candidates that decide the second stage.
        keep = min(keep, main_calibration.raw_threshold(person.second_stage[0]))
    coco = TFLiteDetector.from_config(config.model_copy(update={"score_threshold": keep}))
    models = [DetectorModel(config.model_path.stem, coco, main_calibration)]
    if person is not None:
        models.append(_person_model(config, person))
    return models


def _remote_model(config: DetectorConfig, bridge: ComputeCall | None) -> DetectorModel:
    remote = config.network_compute_bridge
    if remote.address is not None:
        call = worker_call(remote.address)
    elif bridge is not None:
        call = bridge
    else:
        raise ValueError(
            "detector type network_compute_bridge: set network_compute_bridge.address (host:port of the "
            "worker) or run on a robot, whose bridge forwards to the worker"
        )
    # Our own worker sends calibrated scores; another worker's can be calibrated here.
    calibration = ScoreCalibration.from_knots(config.calibration) if config.calibration else ScoreCalibration()
    detector = NetworkComputeDetector(remote, call, labels=read_labels(DEFAULT_LABELS))
    return DetectorModel(f"ncb:{remote.model}", detector, calibration)


def _person_model(config: DetectorConfig, person: PersonModelConfig) -> DetectorModel:
    calibration = calibration_for(person.model_path, PERSON_MODEL, person.calibration)
    detector = TFLiteDetector(  # a shipped model's labels and digest are the detector's own
        person.model_path,
        labels=person.labels,
        score_threshold=calibration.raw_threshold(config.score_threshold),
        iou_threshold=config.iou_threshold,
        num_threads=config.num_threads,
        decoder=person.decoder,
        max_detections=config.max_detections,
        expected_sha256=person.model_sha256,
    )
    # Only Spot's body cameras can be left out (the cost of a second model on five streams);
    # files, videos and other sources always get every model.
    skip = frozenset(SPOT_BODY_CAMERAS) - frozenset(person.cameras) if person.cameras is not None else frozenset()
    return DetectorModel(person.model_path.stem, detector, calibration, skip, person.second_stage)


def calibration_for(model: Path, shipped_model: Path, configured: Calibration | None) -> ScoreCalibration:
    """The configured curves, else the measured ones of a shipped model, else none (raw)."""
    if configured is not None:
        return ScoreCalibration.from_knots(configured)
    if _same_file(model, shipped_model):
        return ScoreCalibration.from_knots(shipped_curves().get(shipped_model.name, {}))
    return ScoreCalibration()


class _MeasuredCurves(StrictModel):
    sha256: str
    measured_on: str
    curves: Calibration


class _ShippedCalibration(StrictModel):
    models: dict[str, _MeasuredCurves]


def shipped_curves() -> dict[str, Calibration]:
    """model file name -> label -> knots, as `bench/bench_person_devset.py --write` measured
    them (perception/models/calibration.yaml)."""
    if not SHIPPED_CALIBRATION.is_file():
        return {}
    data = validate_config(SHIPPED_CALIBRATION, read_yaml(SHIPPED_CALIBRATION), _ShippedCalibration)
    return {name: entry.curves for name, entry in data.models.items()}


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()

