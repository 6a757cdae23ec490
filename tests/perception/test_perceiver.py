"""The per-frame step the agent calls: decode -> rotation -> detector + fiducials -> sightings."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures.perception_support import iou, jpeg_response, render_tag, snapshot
from skimage import data

from perception.config import DetectorConfig
from perception.decode import decode_image_response
from perception.frame import PinholeIntrinsics
from perception.perceiver import Perceiver
from perception.rotation import upright_rotation

DEVSET = Path(__file__).resolve().parents[1] / "fixtures" / "devset" / "images"


@pytest.fixture(scope="module")
def perceiver() -> Perceiver:
    return Perceiver(DetectorConfig(num_threads=1))


def _sideways_person() -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A 640 x 480 grey frame as the frontleft camera sees an upright person (turned +78 deg),
    and where the person's upright box lands in that frame."""
    upright = np.zeros((480, 640), np.uint8)
    person = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY), (420, 420))
    upright[30:450, 110:530] = person
    turn = upright_rotation(78.0, 640, 480)  # the inverse of the -78 that makes it upright
    sideways = cv2.resize(turn.apply(upright), (640, 480))
    sx, sy = 640 / turn.size[0], 480 / turn.size[1]
    # Astronaut's person box in the upright image: (0, 10, 370, 512) of 512 -> scaled, offset.
    k = 420 / 512
    box = np.array([[110 + 0 * k, 30 + 10 * k, 110 + 370 * k, 30 + 512 * k]])
    corners = np.array([[box[0, 0], box[0, 1]], [box[0, 2], box[0, 1]], [box[0, 2], box[0, 3]], [box[0, 0], box[0, 3]]])
    moved = corners @ turn.forward[:, :2].T + turn.forward[:, 2]
    moved *= [sx, sy]
    return sideways, (moved[:, 0].min(), moved[:, 1].min(), moved[:, 0].max(), moved[:, 1].max())


def test_sideways_front_camera_is_turned_upright_and_boxes_come_back(perceiver: Perceiver) -> None:
    image, expected = _sideways_person()
    frame = decode_image_response(jpeg_response(image, camera="frontleft_fisheye_image"))
    found = perceiver.detect_objects(frame)
    assert found and found[0].label == "person"
    assert iou(found[0].box, expected) > 0.5, (found[0].box, expected)
    # The same pixels from a camera that is not rotated: no person (the detector needs upright).
    frame.camera = "back_fisheye_image"
    assert "person" not in [d.label for d in perceiver.detect_objects(frame)]


def test_process_returns_a_frame_result_with_placed_sightings(perceiver: Perceiver) -> None:
    K = PinholeIntrinsics(552.0, 550.0, 322.0, 238.0)
    tag_image = render_tag(21, np.diag([1.0, -1.0, -1.0]), np.array([0.0, 0.0, 1.0]), 0.146, K.camera_matrix())
    resp = jpeg_response(
        tag_image, quality=95, camera="back_fisheye_image", sensor_frame="frontleft_fisheye",
        intrinsics=(K.fx, K.fy, K.cx, K.cy), snapshot=snapshot(), acquisition_s=100.0,
    )
    frame = decode_image_response(resp, robot_to_local=lambda t: t + 1000.0, seq=3)
    result = perceiver.process(frame, now_local=1100.25)
    assert result.camera == "back_fisheye_image" and result.seq == 3
    assert result.time_robot == 100.0 and result.time_local == 1100.0
    assert result.age_at_detection_s == pytest.approx(0.25)
    assert result.detect_ms > 0
    tags = [s for s in result.sightings if s.label == "tag:21"]
    assert len(tags) == 1 and tags[0].position_odom is not None
    # 1 m along the 45-degree-down axis of the camera at odom (2, 1.4, 0.5).
    d = 1.0 / np.sqrt(2.0)
    assert tags[0].position_odom == pytest.approx((2.0, 1.4 + d, 0.5 - d), abs=0.03)


def test_depth_frames_produce_no_sightings(perceiver: Perceiver) -> None:
    from bosdyn.api import image_pb2
    from fixtures.perception_support import image_response

    raw = np.full((4, 4), 1000, "<u2")
    resp = image_response(raw.tobytes(), fmt=image_pb2.Image.FORMAT_RAW,
                          pixel_format=image_pb2.Image.PIXEL_FORMAT_DEPTH_U16, rows=4, cols=4, depth_scale=1000.0)
    assert perceiver.process(decode_image_response(resp)).sightings == []


def test_reduced_decode_keeps_boxes_in_original_pixels(perceiver: Perceiver) -> None:
    big = cv2.resize(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), (1024, 1024))
    resp = jpeg_response(big, camera="hand_color_image")
    full = perceiver.detect_objects(decode_image_response(resp))
    reduced_frame = decode_image_response(resp, min_side=perceiver.decode_min_side)
    assert reduced_frame.image_scale == 0.5
    reduced = perceiver.detect_objects(reduced_frame)
    assert full[0].label == reduced[0].label == "person"
    assert iou(full[0].box, reduced[0].box) > 0.9
    assert max(reduced[0].box) > 600  # original 1024-pixel coordinates, not the 512 decode


def test_one_perceiver_per_worker_thread() -> None:
    image, _ = _sideways_person()
    frame = decode_image_response(jpeg_response(image, camera="frontleft_fisheye_image"))
    results: dict[int, list[str]] = {}

    def work(i: int) -> None:
        p = Perceiver(DetectorConfig(num_threads=1, fiducials=False))
        results[i] = [s.label for _ in range(3) for s in p.process(frame).sightings]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0] == results[1] == ["person"] * 3


class _Stub:
    """A detector that reports fixed boxes (in its input's pixels) and keeps what it was shown."""

    def __init__(self, found: list[tuple[float, float, float, float, float]], input_size: tuple[int, int] | None) -> None:
        self.found, self.input_size, self.seen = found, input_size, []

    def detect(self, image: np.ndarray) -> list:
        from perception.detection import Detection

        self.seen.append(image.copy())
        return [Detection("person", 0, s, (x1, y1, x2, y2)) for x1, y1, x2, y2, s in self.found]


def test_second_stage_looks_at_the_square_around_the_likeliest_unsure_person() -> None:
    from perception.frame import Frame
    from perception.model_set import DetectorModel
    from perception.perceiver import CROP_CONTEXT

    image = np.zeros((480, 640), np.uint8)
    image[150:250, 480:520] = 255  # the unsure person, 40 x 100 px, centred at (500, 200)
    first = _Stub([(480, 150, 520, 250, 0.3), (40, 300, 60, 340, 0.2), (100, 100, 300, 400, 0.05)], None)
    stage = _Stub([(40, 10, 120, 150, 0.9)], (160, 160))
    perceiver = Perceiver(DetectorConfig(fiducials=False), models=[
        DetectorModel("coco", first), DetectorModel("pose", stage, second_stage=(0.1, 0.5))])
    found = perceiver.detect_objects(Frame("frontleft_fisheye_image", image, 0.0, 0.0), rotation_deg=0.0)
    # One run, at the stage's input size, on the 0.3 candidate's square (not the 0.2 one's, and
    # not the 0.05 box below the band): at least 160 px of frame, the person in its middle.
    (crop,) = stage.seen
    assert crop.shape == (160, 160)
    side = max(160.0, 100 * CROP_CONTEXT)
    ys, xs = np.nonzero(crop > 128)
    assert abs(xs.mean() - 80) < 2 and abs(ys.mean() - 80) < 2
    assert (ys.max() - ys.min() + 1) == pytest.approx(100 * 160 / side, abs=2)
    # The stage confirmed the candidate: its score, the first model's box; the other stays as it was.
    people = sorted(found, key=lambda d: -d.score)
    assert people[0].box == (480, 150, 520, 250) and people[0].score == 0.9 and people[0].model == "pose"
    # A frame whose people are all sure (or absent) never runs the stage.
    first.found = [(480, 150, 520, 250, 0.8)]
    perceiver.detect_objects(Frame("frontleft_fisheye_image", image, 0.0, 0.0), rotation_deg=0.0)
    assert len(stage.seen) == 1


def test_a_frame_covering_person_stays_only_when_the_person_model_confirms_it() -> None:
    from perception.frame import Frame
    from perception.model_set import DetectorModel

    image = np.zeros((480, 640), np.uint8)
    close_up = (10, 5, 630, 480, 0.8)  # 0.97 of the frame: over the 0.85 guard
    first = _Stub([close_up], None)
    stage = _Stub([], (160, 160))
    # The person model watches the front cameras only; a close-up is checked on every camera.
    perceiver = Perceiver(DetectorConfig(fiducials=False), models=[
        DetectorModel("coco", first),
        DetectorModel("pose", stage, skip_cameras=frozenset({"left_fisheye_image"}), second_stage=(0.1, 0.5))])
    frame = Frame("left_fisheye_image", image, 0.0, 0.0)
    assert perceiver.detect_objects(frame, rotation_deg=0.0) == []  # the stage saw no one: dropped
    assert len(stage.seen) == 1 and stage.seen[0].shape == (160, 160)  # the whole frame's square
    stage.found = [(20, 10, 140, 160, 0.3)]  # unsure of someone: still dropped
    assert perceiver.detect_objects(frame, rotation_deg=0.0) == []
    stage.found = [(20, 10, 140, 160, 0.7)]  # sure: kept, with the COCO detector's own score and box
    (person,) = perceiver.detect_objects(frame, rotation_deg=0.0)
    assert person.score == 0.8 and person.box == close_up[:4] and person.model == "coco"
    # Without a person model nothing can confirm it: the guard drops it.
    alone = Perceiver(DetectorConfig(fiducials=False), models=[DetectorModel("coco", first)])
    assert alone.detect_objects(frame, rotation_deg=0.0) == []


@pytest.mark.parametrize(("name", "person"), [("mpl_grace_hopper", True), ("opencv_baboon", False),
                                               ("skimage_chelsea", False), ("opencv_chicky_512", False)])
def test_real_close_up_kept_and_whole_frame_hallucinations_dropped(name: str, person: bool) -> None:
    """Dev-set photos whose best person box covers 0.95-0.98 of the frame: a woman's portrait, and
    a baboon's face, a cat and a chick, which NanoDet-g alone calls a person or an animal there."""
    from perception.frame import Frame

    image = cv2.imread(str(DEVSET / f"{name}.jpg"), cv2.IMREAD_GRAYSCALE)
    found = Perceiver(DetectorConfig(num_threads=1, fiducials=False)).detect_objects(
        Frame("left_fisheye_image", image, 0.0, 0.0), rotation_deg=0.0)
    covering = [d for d in found if (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) > 0.85 * image.size]
    if person:
        (hopper,) = covering
        assert hopper.label == "person" and hopper.score >= 0.5 and hopper.keypoints is not None
    else:
        assert covering == []
