"""The shipped MoveNet MultiPose model: integrity, people with keypoints on a real photo, keypoints
mapped back from a sideways camera, the decoder's layout and threshold, 'auto' recognising it."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures.perception_support import iou

from perception import detector as detector_module
from perception.config import PERSON_MODEL, PERSON_MODEL_SHA256, DetectorConfig
from perception.decoders import DecodeParams, MoveNetDecoder, YoloDecoder, select_decoder
from perception.decoders.movenet import COCO_KEYPOINTS
from perception.detection import Detection
from perception.detector import ModelIntegrityError, TFLiteDetector
from perception.frame import Frame
from perception.perceiver import Perceiver
from perception.signature import ModelSignature, TensorSpec

ASTRONAUT = Path(__file__).resolve().parents[2] / "sim" / "assets" / "astronaut_grey.png"
ASTRONAUT_BOX = (0, 10, 370, 512)  # drawn by eye around the astronaut (as test_detector.py)
KP = {name: i for i, name in enumerate(COCO_KEYPOINTS)}


@pytest.fixture(scope="module")
def movenet() -> TFLiteDetector:
    return TFLiteDetector(PERSON_MODEL, score_threshold=0.15, num_threads=2)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    image = cv2.imread(str(ASTRONAUT), cv2.IMREAD_GRAYSCALE)
    assert image is not None and image.shape == (512, 512)
    return image


def _only_person(found: list[Detection]) -> Detection:
    assert len(found) == 1, found
    (person,) = found
    assert person.label == "person" and person.class_id == 0
    assert person.keypoints is not None and len(person.keypoints) == 17
    return person


def test_shipped_model_is_recognised_and_its_digest_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert hashlib.sha256(PERSON_MODEL.read_bytes()).hexdigest() == PERSON_MODEL_SHA256
    det = TFLiteDetector(PERSON_MODEL)
    assert det.decoder_name == "movenet"  # 'auto' from the signature alone
    assert det.labels == ["person"]
    assert det.input_size == (160, 160)
    assert det.signature.inputs[0].dtype == np.uint8
    # The digest is checked on every load: a shipped entry with another digest refuses the file.
    shipped = dict(detector_module.SHIPPED_MODELS)
    shipped[PERSON_MODEL.name] = dataclasses.replace(shipped[PERSON_MODEL.name], sha256="0" * 64)
    monkeypatch.setattr(detector_module, "SHIPPED_MODELS", shipped)
    with pytest.raises(ModelIntegrityError, match="0" * 64):
        TFLiteDetector(PERSON_MODEL)


def test_finds_the_astronaut_with_keypoints_on_her_body(movenet: TFLiteDetector, astronaut: np.ndarray) -> None:
    person = _only_person(movenet.detect(astronaut))
    assert iou(person.box, ASTRONAUT_BOX) > 0.75, person.box
    assert 0.3 < person.score < 0.7  # MoveNet's box scores run low: 0.47 here
    kp = person.keypoints
    assert kp is not None
    x1, y1, x2, y2 = person.box
    face = [kp[KP[n]] for n in ("nose", "left_eye", "right_eye")]
    for x, y, score in face:
        assert score > 0.5
        assert x1 <= x <= x2 and y1 <= y <= y1 + 0.35 * (y2 - y1)  # in the box's upper part
    # Her face, by eye on the photo: x 190..260, y 90..160 (a y/x swap puts the nose at x ~121).
    nose = kp[KP["nose"]]
    assert 190 < nose[0] < 260 and 90 < nose[1] < 160, nose
    # Facing the camera: her left eye and shoulder are on the image's right, shoulders below eyes.
    assert kp[KP["left_eye"]][0] > nose[0] > kp[KP["right_eye"]][0]
    assert kp[KP["left_shoulder"]][0] > kp[KP["right_shoulder"]][0]
    assert min(kp[KP["left_shoulder"]][1], kp[KP["right_shoulder"]][1]) > nose[1] + 40


def _sideways_camera_image(upright: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 640 x 480 frame holding `upright` turned +78 degrees (as frontleft sees the world, which
    the agent turns upright with -78), and the 2 x 3 affine (pixel centres) that made it."""
    affine = cv2.getRotationMatrix2D((255.5, 255.5), 78.0, 0.75)
    affine[:, 2] += (319.5 - 255.5, 239.5 - 255.5)  # photo centre -> frame centre
    return cv2.warpAffine(upright, affine, (640, 480)), affine


def test_sideways_frame_gives_keypoints_in_original_pixels(astronaut: np.ndarray) -> None:
    cfg = DetectorConfig(model=PERSON_MODEL, score_threshold=0.15, fiducials=False)
    perceiver = Perceiver(cfg)
    upright = _only_person(perceiver.detect_objects(_frame("back_fisheye_image", astronaut)))
    raw, affine = _sideways_camera_image(astronaut)
    assert cfg.rotation_for("frontleft_fisheye_image") == -78.0
    sideways = _only_person(perceiver.detect_objects(_frame("frontleft_fisheye_image", raw)))
    # Where the upright photo's keypoints land in the sideways frame (continuous coordinates).
    assert upright.keypoints is not None and sideways.keypoints is not None
    ref = np.array(upright.keypoints)
    expected = (ref[:, :2] - 0.5) @ affine[:, :2].T + affine[:, 2] + 0.5
    got = np.array(sideways.keypoints)
    confident = (ref[:, 2] > 0.4) & (got[:, 2] > 0.4)
    assert confident.sum() >= 5  # face and shoulders: the photo stops at her chest
    # The model sees her re-sampled on another canvas, at 160 x 160 (4 px of the frame per input
    # pixel): face points agree within ~6 px, the (vaguer) shoulders and elbows within ~25 px; a
    # wrong or missing mapping is off by 100s of px.
    err = np.linalg.norm(got[:, :2] - expected, axis=1)
    face = np.arange(17) < 5
    assert err[confident & face].max() < 10.0, err
    assert err[confident].max() < 40.0, err
    # The box is the bound of the rotated box: it must hold the mapped keypoints.
    x1, y1, x2, y2 = sideways.box
    assert (got[confident, 0] >= x1 - 1).all() and (got[confident, 0] <= x2 + 1).all()
    assert (got[confident, 1] >= y1 - 1).all() and (got[confident, 1] <= y2 + 1).all()


def _frame(camera: str, image: np.ndarray) -> Frame:
    return Frame(camera=camera, image=image, acquisition_time_robot=0.0, acquisition_time_local=0.0)


def _signature(people: int = 6) -> ModelSignature:
    return ModelSignature(
        inputs=(TensorSpec(0, "image", (1, 192, 256, 3), np.dtype(np.uint8)),),
        outputs=(TensorSpec(1, "poses", (1, people, 56), np.dtype(np.float32)),),
    )


def _person(box_yxyx: tuple[float, float, float, float], score: float, nose_yx: tuple[float, float]) -> np.ndarray:
    row = np.zeros(56, np.float32)
    row[0:3] = (*nose_yx, 0.9)
    row[51:55] = box_yxyx
    row[55] = score
    return row


def test_decoder_layout_and_score_threshold() -> None:
    decoder = MoveNetDecoder(_signature())
    out = np.zeros((1, 6, 56), np.float32)
    out[0, 1] = _person((0.25, 0.5, 0.75, 1.0), 0.30, (0.3, 0.6))
    out[0, 4] = _person((0.0, 0.0, 0.5, 0.25), 0.08, (0.1, 0.1))  # under the threshold
    params = DecodeParams(0.1, 0.5, 100, input_width=256, input_height=192)
    raw = decoder.decode(lambda index: out if index == 1 else np.empty(0), params)
    assert len(raw) == 1
    # ymin, xmin, ymax, xmax normalised -> x1, y1, x2, y2 input pixels (width 256, height 192).
    np.testing.assert_allclose(raw.boxes[0], [128.0, 48.0, 256.0, 144.0])
    assert raw.scores[0] == pytest.approx(0.30) and raw.class_ids[0] == 0
    assert raw.keypoints is not None and raw.keypoints.shape == (1, 17, 3)
    np.testing.assert_allclose(raw.keypoints[0, 0], [0.6 * 256, 0.3 * 192, 0.9], rtol=1e-6)
    lower = DecodeParams(0.05, 0.5, 100, input_width=256, input_height=192)
    both = decoder.decode(lambda index: out, lower)
    assert list(both.scores) == pytest.approx([0.30, 0.08])  # best first
    assert decoder.decode(lambda index: out, DecodeParams(0.31, 0.5, 100, 256, 192)).boxes.shape == (0, 4)


def test_real_model_applies_the_threshold(astronaut: np.ndarray) -> None:
    strict = TFLiteDetector(PERSON_MODEL, score_threshold=0.6)
    assert strict.detect(astronaut) == []  # her score is ~0.47


def test_auto_picks_movenet_for_its_signature_not_yolo() -> None:
    assert YoloDecoder.matches(_signature())  # YOLO's loose [1, 4 + C, N] reading would take it
    assert isinstance(select_decoder(_signature()), MoveNetDecoder)
    assert isinstance(select_decoder(_signature(), "movenet"), MoveNetDecoder)
    assert not MoveNetDecoder.matches(
        ModelSignature(
            inputs=_signature().inputs, outputs=(TensorSpec(1, "y", (1, 84, 8400), np.dtype(np.float32)),)
        )
    )
    assert DetectorConfig(decoder="movenet").decoder == "movenet"
