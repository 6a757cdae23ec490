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

from perception.boxes import Box
from perception.combine import calibrated, confirmed, covers_frame, merge, resolve
from perception.config import DetectorConfig
from perception.detection import Detection, FiducialDetection, FrameResult
from perception.detector import Detector
from perception.fiducials import FiducialFinder
from perception.frame import Frame
from perception.localize import sightings_for
from perception.model_set import DetectorModel, load_model_set
from perception.network_compute import ComputeCall
from perception.rotation import UprightRotation, upright_rotation

# A second stage's crop: the candidates' extent times this. A detector's low-score person is often
# a part (a torso, a head and shoulders); the pose model needs the rest of the body in view.
CROP_CONTEXT = 1.2
# A person a second stage reports on its crop must span this much of it: the crop is at least the
# model's input, so a far person fills >= 1/4 of it, while 10-20 px "people" were clutter (a tag
# board's corner in the sim scored 0.36 once calibrated).
MIN_CROP_PERSON = 0.2


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
        found, _ = self._detect(frame, rotation_deg)
        return merge(found, self.config.score_threshold, self.config.iou_threshold, self.config.max_detections)

    def detect_by_model(self, frame: Frame, rotation_deg: float | None = None) -> dict[str, list[Detection]]:
        """What each model that ran on the frame found itself (calibrated): model name -> detections."""
        _, by_model = self._detect(frame, rotation_deg)
        return by_model

    def _detect(self, frame: Frame, rotation_deg: float | None) -> tuple[list[Detection], dict[str, list[Detection]]]:
        angle = self.config.rotation_for(frame.camera) if rotation_deg is None else rotation_deg
        found: list[Detection] = []
        close_ups: list[Detection] = []  # people whose box covers most of the frame
        by_model: dict[str, list[Detection]] = {}
        for model in self.models:  # in order: a second stage sees what the models before it found
            if model.second_stage is None:
                if not model.watches(frame.camera):
                    continue
                kept, covering = self._run(model, frame, angle)
                by_model[model.name] = kept
                found.extend(kept)
                # (Only those that could be reported: a confirmed one keeps its own score.)
                close_ups.extend(d for d in covering if d.label == "person" and d.score >= self.config.score_threshold)
                continue
            if close_ups:
                # A box over most of the frame is a close-up or a hallucination (a cat's or a
                # baboon's face, a texture: 0.9-0.99 of the frame on the dev set). The person model
                # tells them apart (whole-frame raw 0.49 on a real close-up, <= 0.09 on those). On
                # every camera: the nearest person matters everywhere, and such boxes are rare.
                nearest = max(close_ups, key=lambda d: d.score)
                kept, covering = self._run(model, frame, angle, around=[nearest.box])
                by_model.setdefault(model.name, []).extend(kept + covering)
                found.extend(confirmed([nearest], kept + covering, model.second_stage[1]))
            if model.watches(frame.camera) and (candidates := model.unresolved(found)):
                # One run, on the likeliest unsure person: the union of all of them is often most of
                # a cluttered frame, which would shrink a far person as a whole-frame run does
                # (dev set: recall 0.89 on the best one's square, 0.85 on the union's).
                kept, _ = self._run(model, frame, angle, around=candidates[:1])
                by_model.setdefault(model.name, []).extend(kept)
                found = resolve(found, kept, model.second_stage)
        return found, by_model

    def _run(
        self, model: DetectorModel, frame: Frame, angle: float, around: Sequence[Box] | None = None
    ) -> tuple[list[Detection], list[Detection]]:
        """`model` on the upright frame, or, given candidate boxes (original-image pixels), on the
        square of the upright frame around them, at the model's input size. Returns what it found
        (original-image pixels, calibrated) and, apart, the boxes covering most of the frame."""
        h, w = frame.image.shape[:2]
        rotation = upright_rotation(angle, w, h)
        canvas_w, canvas_h = rotation.size
        if around is not None and model.input_size is not None:
            region = crop_around(rotation, np.array(around, np.float64) * frame.image_scale, model.input_size)
            rotation = rotation.cropped_to(region, model.input_size)
            region_w, region_h = region[2] - region[0], region[3] - region[1]
        else:
            size = model.input_size_for(canvas_w, canvas_h)
            if not rotation.is_identity and size is not None:
                rotation = rotation.scaled_to(size)  # rotate + resize in one warp
            region_w, region_h = canvas_w, canvas_h
        upright = rotation.apply(frame.image)
        uh, uw = upright.shape[:2]
        found = model.detector.detect(upright)
        if around is not None:  # on a crop the model sees clutter at full size: too small is no one
            found = [d for d in found if max(d.box[2] - d.box[0], d.box[3] - d.box[1]) >= MIN_CROP_PERSON * uh]
        if not found:
            return [], []
        # The frame-covering guard is about the whole upright frame, also when the model saw a crop.
        frame_fraction = self.config.max_box_fraction * (canvas_w * canvas_h) / (region_w * region_h)
        covers = [covers_frame(d.box, uw, uh, frame_fraction) for d in found]
        found = calibrated(_to_source(found, rotation, frame.image_scale), model.calibration, model.name)
        return [d for d, c in zip(found, covers) if not c], [d for d, c in zip(found, covers) if c]

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


def crop_around(rotation: UprightRotation, boxes: np.ndarray, input_size: tuple[int, int]) -> Box:
    """The square of the upright canvas a second stage looks at for candidate `boxes` (image
    pixels): their union with a margin of context, at least the model's input side (a far
    person is seen at full resolution, never blown up), kept on the canvas where it fits."""
    upright = rotation.boxes_from_source(boxes)
    x1, y1 = upright[:, 0].min(), upright[:, 1].min()
    x2, y2 = upright[:, 2].max(), upright[:, 3].max()
    canvas_w, canvas_h = rotation.size
    side = min(max((x2 - x1), (y2 - y1)) * CROP_CONTEXT, float(max(canvas_w, canvas_h)))
    side = max(side, float(max(input_size)))
    cx, cy = _inside((x1 + x2) / 2.0, side, canvas_w), _inside((y1 + y2) / 2.0, side, canvas_h)
    return (float(cx - side / 2.0), float(cy - side / 2.0), float(cx + side / 2.0), float(cy + side / 2.0))


def _inside(centre: float, side: float, extent: float) -> float:
    """`centre` moved so that a `side` span around it stays within [0, extent] (centred if it can't)."""
    if side >= extent:
        return extent / 2.0
    return min(max(centre, side / 2.0), extent - side / 2.0)


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
