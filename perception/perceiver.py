"""One frame in, one `FrameResult` out: rotation, detector, fiducials, localisation.

This is what the agent's perception worker calls. A `Perceiver` owns its interpreter and its
fiducial detector: create one per worker thread and never share it between threads.
"""

from __future__ import annotations

import time

import numpy as np

from perception.config import DetectorConfig
from perception.detection import Detection, FiducialDetection, FrameResult
from perception.detector import Detector, TFLiteDetector
from perception.fiducials import FiducialFinder
from perception.frame import Frame
from perception.localize import sightings_for
from perception.rotation import UprightRotation, upright_rotation


class Perceiver:
    def __init__(
        self,
        config: DetectorConfig | None = None,
        *,
        detector: Detector | None = None,
        fiducials: FiducialFinder | None = None,
    ) -> None:
        self.config = config or DetectorConfig()
        self.detector: Detector = detector if detector is not None else TFLiteDetector.from_config(self.config)
        if fiducials is None and self.config.fiducials:
            fiducials = FiducialFinder(self.config.tag_size_m, self.config.tag_sizes_m)
        self.fiducials = fiducials
        self._input_size: tuple[int, int] | None = getattr(self.detector, "input_size", None)

    @classmethod
    def from_config(cls, config: DetectorConfig | None = None) -> Perceiver:
        return cls(config)

    @property
    def decode_min_side(self) -> int | None:
        """Pass to `decode_image_response(min_side=...)`: the smallest JPEG side worth decoding."""
        return max(self._input_size) if self._input_size else None

    def detect_objects(self, frame: Frame) -> list[Detection]:
        """The detector on the frame turned upright; boxes in original-image pixels."""
        image = frame.image
        h, w = image.shape[:2]
        rotation = upright_rotation(self.config.rotation_for(frame.camera), w, h)
        if not rotation.is_identity and self._input_size is not None:
            rotation = rotation.scaled_to(self._input_size)  # rotate + resize in one warp
        found = self.detector.detect(rotation.apply(image))
        if not found:
            return []
        boxes = rotation.boxes_to_source(np.array([d.box for d in found], dtype=np.float64))
        boxes /= frame.image_scale
        return [
            Detection(
                d.label,
                d.class_id,
                d.score,
                (float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                _keypoints_to_source(d.keypoints, rotation, frame.image_scale),
            )
            for d, b in zip(found, boxes)
        ]

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


def _keypoints_to_source(
    keypoints: tuple[tuple[float, float, float], ...] | None, rotation: UprightRotation, image_scale: float
) -> tuple[tuple[float, float, float], ...] | None:
    """A detection's keypoints, found in the upright image, in original-image pixels (scores kept)."""
    if keypoints is None:
        return None
    points = np.array(keypoints, dtype=np.float64).reshape(-1, 3)
    xy = rotation.coords_to_source(points[:, :2]) / image_scale
    return tuple((float(x), float(y), float(s)) for (x, y), s in zip(xy, points[:, 2]))
