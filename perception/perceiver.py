"""One frame in, one `FrameResult` out: rotation, detectors, fiducials, localisation.

This is what the agent's perception worker calls. A `Perceiver` owns its interpreters and its
fiducial detector: create one per worker thread and never share it between threads.

Two detectors by default (`DetectorConfig.person_model`): the COCO detector on every camera, and
a person model (MoveNet MultiPose) on the cameras it is configured for. Each model sees the frame
turned upright at its own input size; its boxes (and keypoints) are mapped back to the original
image, scored on the shared scale (`perception.calibration`) and merged into one detection per
object (`perception.combine`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from perception.combine import calibrated, covers_frame, merge
from perception.config import DetectorConfig
from perception.detection import Detection, FiducialDetection, FrameResult
from perception.detector import Detector
from perception.fiducials import FiducialFinder
from perception.frame import Frame
from perception.localize import sightings_for
from perception.model_set import DetectorModel, load_model_set
from perception.network_compute import ComputeCall
from perception.rotation import UprightRotation, upright_rotation


class Perceiver:
    def __init__(
        self,
        config: DetectorConfig | None = None,
        *,
        detector: Detector | None = None,
        models: Sequence[DetectorModel] | None = None,
        fiducials: FiducialFinder | None = None,
        bridge: ComputeCall | None = None,
    ) -> None:
        """The models the config names; or only `detector`, or only `models`, when given (tests,
        tools, the calibration benchmark). `bridge`: the robot's NetworkComputeBridge, for a
        config whose detector runs on a worker reached through the robot."""
        self.config = config or DetectorConfig()
        if detector is not None:
            self.models: list[DetectorModel] = [DetectorModel("detector", detector)]
        elif models is not None:
            self.models = list(models)
        else:
            self.models = load_model_set(self.config, bridge)
        if fiducials is None and self.config.fiducials:
            fiducials = FiducialFinder(self.config.tag_size_m, self.config.tag_sizes_m)
        self.fiducials = fiducials

    @classmethod
    def from_config(cls, config: DetectorConfig | None = None, bridge: ComputeCall | None = None) -> Perceiver:
        return cls(config, bridge=bridge)

    @property
    def detector(self) -> Detector:
        """The first (COCO) detector."""
        return self.models[0].detector

    @property
    def decode_min_side(self) -> int | None:
        """Pass to `decode_image_response(min_side=...)`: the smallest JPEG side worth decoding."""
        sizes = [max(s) for m in self.models if (s := m.input_size) is not None]
        return max(sizes) if sizes else None

    def detect_objects(self, frame: Frame, rotation_deg: float | None = None) -> list[Detection]:
        """Every model watching the frame's camera on the frame turned upright (by the camera's
        rotation, or `rotation_deg`), merged; boxes and keypoints in original-image pixels."""
        angle = self.config.rotation_for(frame.camera) if rotation_deg is None else rotation_deg
        found: list[Detection] = []
        for model in self.models:  # in order: a second stage sees what the models before it found
            if model.watches(frame.camera) and model.wanted(found):
                found.extend(self._run(model, frame, angle))
        return merge(found, self.config.score_threshold, self.config.iou_threshold, self.config.max_detections)

    def _run(self, model: DetectorModel, frame: Frame, angle: float) -> list[Detection]:
        h, w = frame.image.shape[:2]
        rotation = upright_rotation(angle, w, h)
        if not rotation.is_identity and model.input_size is not None:
            rotation = rotation.scaled_to(model.input_size)  # rotate + resize in one warp
        upright = rotation.apply(frame.image)
        uh, uw = upright.shape[:2]
        found = [
            d for d in model.detector.detect(upright)
            if not covers_frame(d.box, uw, uh, self.config.max_box_fraction)
        ]
        if not found:
            return []
        return calibrated(_to_source(found, rotation, frame.image_scale), model.calibration, model.name)

    def find_fiducials(self, frame: Frame) -> list[FiducialDetection]:
        if self.fiducials is None:
            return []
        return self.fiducials.find(frame.image, frame.intrinsics, frame.image_scale)

    def process(self, frame: Frame, now_local: float | None = None) -> FrameResult:
        """Everything perception finds in `frame`. `now_local` (time.time()) dates its age."""
        age = (now_local if now_local is not None else time.time()) - frame.acquisition_time_local
        start = time.perf_counter()
        if frame.is_depth:
            sightings = []  # depth frames feed localisation, not the detector
        else:
            sightings = sightings_for(frame, self.detect_objects(frame), self.find_fiducials(frame))
        return FrameResult(
            camera=frame.camera,
            seq=frame.seq,
            time_robot=frame.acquisition_time_robot,
            time_local=frame.acquisition_time_local,
            sightings=sightings,
            detect_ms=(time.perf_counter() - start) * 1000.0,
            age_at_detection_s=age,
        )


def _to_source(found: Sequence[Detection], rotation: UprightRotation, image_scale: float) -> list[Detection]:
    """Detections in the upright image -> the same in the original image's (full-scale) pixels."""
    boxes = rotation.boxes_to_source(np.array([d.box for d in found], dtype=np.float64)) / image_scale
    out = []
    for d, b in zip(found, boxes):
        keypoints = _keypoints_to_source(d.keypoints, rotation, image_scale)
        out.append(Detection(d.label, d.class_id, d.score, (float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                             keypoints=keypoints, model=d.model))
    return out

def _keypoints_to_source(
    keypoints: tuple[tuple[float, float, float], ...] | None, rotation: UprightRotation, image_scale: float
) -> tuple[tuple[float, float, float], ...] | None:
    """A detection's keypoints, found in the upright image, in original-image pixels (scores kept)."""
    if keypoints is None:
        return None
    points = np.array(keypoints, dtype=np.float64).reshape(-1, 3)
    xy = rotation.coords_to_source(points[:, :2]) / image_scale
    return tuple((float(x), float(y), float(s)) for (x, y), s in zip(xy, points[:, 2]))
