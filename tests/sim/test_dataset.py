"""`spot-agent sim dataset`: the ground truth is where the objects are, by independent checks.

- Foot point: a person's box, its bottom centre turned back into the raw image and ray-cast
  through the served intrinsics and mounting pose to the floor, lands on the person's position.
- Pixels: the box matches the box of the pixels that change when the object is added to the
  scene (two full renders, differenced), IoU >= 0.9.
- Truncation and occlusion flags in constructed scenes; determinism by seed; the upright image
  and boxes agree with what the shipped Perceiver does on the raw frame.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from perception.boxes import iou_matrix
from perception.config import DetectorConfig
from perception.evaluate import load_coco
from perception.frame import Frame
from perception.perceiver import Perceiver
from perception.rotation import upright_rotation
from sim.cameras import CAMERAS, CameraSpec
from sim.dataset.coco import DatasetRequest, write_dataset
from sim.dataset.truth import ObjectTruth, frame_truth, mask_box, upright_mask
from sim.dataset.variations import VariationOptions
from sim.poses import body_pose
from sim.render import render_grey
from sim.scene import Scenario, load_scenario, scenario_dir

BODY = body_pose(0.0, 0.0, 0.5, 0.0)
ROTATION = DetectorConfig().rotation_for


def _person(x: float, y: float, appearance: str = "astronaut") -> dict:
    return {"type": "person", "pose": {"x": x, "y": y}, "appearance": appearance}


def _truth(camera: CameraSpec, objects: list[dict]) -> list[ObjectTruth]:
    scenario = Scenario.model_validate({"objects": objects})
    return frame_truth(camera, BODY, scenario, 0.0, ROTATION(camera.name))


def _floor_point(camera: CameraSpec, box: tuple[float, float, float, float]) -> np.ndarray:
    """Where the ray through the box's bottom centre (upright image) meets the floor, in odom."""
    rotation = upright_rotation(ROTATION(camera.name), camera.width, camera.height)
    x1, _, x2, y2 = box
    u, v = rotation.coords_to_source(np.array([[(x1 + x2) / 2.0, y2]]))[0] - 0.5  # pixel-centre coordinates
    ray = np.linalg.inv(camera.camera_matrix()) @ np.array([u, v, 1.0])
    pose = (BODY * camera.body_tform_camera).to_matrix()
    direction, origin = pose[:3, :3] @ ray, pose[:3, 3]
    return origin + direction * (-origin[2] / direction[2])


def _to_upright_image(camera: CameraSpec, point: np.ndarray) -> np.ndarray:
    """An odom point projected through the camera model into the upright image (continuous
    coordinates: pixel i spans [i, i + 1))."""
    pose = (BODY * camera.body_tform_camera).to_matrix()
    u, v, w = camera.camera_matrix() @ (pose[:3, :3].T @ (point - pose[:3, 3]))
    forward = upright_rotation(ROTATION(camera.name), camera.width, camera.height).forward
    return forward[:, :2] @ np.array([u / w, v / w]) + forward[:, 2] + 0.5


@pytest.mark.parametrize(
    ("camera", "xy", "tolerance_m"),
    [
        ("frontleft_fisheye_image", (2.3, -0.3), 0.06),
        ("frontright_fisheye_image", (3.0, 0.5), 0.06),
        # Low, pitched cameras: a pixel row spans 5-15 cm of floor at 2.5-4.5 m.
        ("left_fisheye_image", (0.2, 3.5), 0.2),
        ("back_fisheye_image", (-4.5, 0.2), 0.2),
    ],
)
@pytest.mark.parametrize("appearance", ["astronaut", "walker_dark_coat"])
def test_a_persons_box_foot_point_lands_where_the_person_stands(
    camera: str, xy: tuple[float, float], tolerance_m: float, appearance: str
) -> None:
    spec = CAMERAS[camera]
    (truth,) = _truth(spec, [_person(*xy, appearance)])
    assert truth.category == "person" and not truth.truncated and not truth.ignore
    ground = _floor_point(spec, truth.bbox)
    assert math.hypot(ground[0] - xy[0], ground[1] - xy[1]) < tolerance_m
    x1, _, x2, y2 = truth.bbox
    foot = _to_upright_image(spec, np.array([xy[0], xy[1], 0.0]))
    assert abs(y2 - foot[1]) < 1.5 and abs((x1 + x2) / 2 - foot[0]) < 0.1 * (x2 - x1)  # pixels
    camera_xy = (BODY * spec.body_tform_camera).to_matrix()[:2, 3]
    assert truth.distance_m == pytest.approx(math.dist(xy, camera_xy), abs=1e-6)


def _changed_box(camera: CameraSpec, objects: list[dict], added: dict) -> tuple[float, float, float, float]:
    """Box (upright image) of the pixels that change when `added` joins the scene."""
    without = Scenario.model_validate({"objects": objects})
    with_it = Scenario.model_validate({"objects": [*objects, added]})
    a = render_grey(camera, BODY, without, 0.0).astype(np.int16)
    b = render_grey(camera, BODY, with_it, 0.0).astype(np.int16)
    changed = np.abs(a - b) > 12  # above the soft contact shadow under a person's feet
    box = mask_box(upright_mask(changed, ROTATION(camera.name)))
    assert box is not None
    return box


def _octagon_box(camera: CameraSpec, sign: dict) -> tuple[float, float, float, float]:
    """Box (upright image) of the sign's 8 vertices projected through the camera model."""
    from sim.render.textures import octagon

    pose, size = sign["pose"], sign.get("size_m", 0.6)
    yaw = math.radians(pose["yaw_deg"])
    right = np.array([-math.sin(yaw), math.cos(yaw), 0.0])
    flat = octagon((0.0, 0.0), size)  # x right, y down on the face
    points = np.array([pose["x"], pose["y"], pose["z"]]) + flat[:, :1] * right - flat[:, 1:] * np.array([0.0, 0.0, 1.0])
    uv = np.array([_to_upright_image(camera, p) for p in points])
    return float(uv[:, 0].min()), float(uv[:, 1].min()), float(uv[:, 0].max()), float(uv[:, 1].max())


@pytest.mark.parametrize("camera", ["frontleft_fisheye_image", "left_fisheye_image"])
@pytest.mark.parametrize(
    "added",
    [
        _person(3.0, 0.4, "walker_puffer"),
        _person(4.5, -0.6, "astronaut"),
        {"type": "stop_sign", "pose": {"x": 2.8, "y": 0.2, "z": 0.7, "yaw_deg": 180.0}},
    ],
)
def test_a_box_is_the_box_of_the_objects_rendered_pixels(camera: str, added: dict) -> None:
    spec = CAMERAS[camera]
    if camera.startswith("left"):  # the same object, seen by the left camera
        added = {**added, "pose": {**added["pose"], "x": -added["pose"]["y"], "y": added["pose"]["x"],
                                   **({"yaw_deg": -90.0} if "z" in added["pose"] else {})}}  # fmt: skip
    clutter = [{"type": "box", "pose": {"x": 6.0, "y": 6.0}}]  # something else in the world
    truths = [t for t in _truth(spec, [*clutter, added]) if t.object_index == 1]
    assert len(truths) == 1
    if added["type"] == "stop_sign":  # the render changes the post too: project the octagon instead
        rendered = _octagon_box(spec, added)
    else:
        rendered = _changed_box(spec, clutter, added)
    assert iou_matrix([truths[0].bbox], [rendered])[0, 0] >= 0.9


def test_truncated_when_the_frame_edge_cuts_the_person() -> None:
    spec = CAMERAS["frontleft_fisheye_image"]
    (whole,) = _truth(spec, [_person(4.0, -1.0)])
    (cut,) = _truth(spec, [_person(2.0, -2.3)])  # at the right edge of the front-right view
    assert not whole.truncated and whole.visible_fraction == pytest.approx(1.0, abs=0.01)
    assert cut.truncated and cut.visible_fraction < 0.9 and cut.occluded == pytest.approx(0.0, abs=0.01)


def test_occluded_fraction_when_a_nearer_box_hides_the_legs() -> None:
    spec = CAMERAS["frontleft_fisheye_image"]
    person = _person(4.0, -1.0)
    (alone,) = _truth(spec, [person])
    crate = {"type": "box", "pose": {"x": 2.5, "y": -0.62}, "length_m": 0.4, "width_m": 1.2, "height_m": 0.6}
    (hidden,) = [t for t in _truth(spec, [person, crate]) if t.category == "person"]
    assert 0.2 < hidden.occluded < 0.7 and not hidden.truncated and not hidden.ignore
    assert hidden.bbox[3] < alone.bbox[3] - 20  # the box ends where the crate begins
    assert hidden.bbox[1] == pytest.approx(alone.bbox[1], abs=1)  # the head is still there
    wall = {"type": "box", "pose": {"x": 2.5, "y": -0.62}, "length_m": 0.4, "width_m": 1.2, "height_m": 1.5}
    mostly = [t for t in _truth(spec, [person, wall]) if t.category == "person"]
    assert all(t.ignore and t.occluded > 0.75 for t in mostly)  # head peeking over: an ignore region


def test_a_far_small_person_and_a_sign_seen_from_behind_are_ignore_regions() -> None:
    spec = CAMERAS["frontleft_fisheye_image"]
    (far,) = _truth(spec, [{**_person(40.0, -9.0), "height_m": 1.6}])
    assert far.ignore and (far.bbox[3] - far.bbox[1] < 10 or far.bbox[2] - far.bbox[0] < 10)
    back = {"type": "stop_sign", "pose": {"x": 2.8, "y": -0.6, "z": 0.7, "yaw_deg": 0.0}}
    (sign,) = _truth(spec, [back])
    assert sign.category == "stop sign" and sign.ignore


def _request(seed: int, frames: int = 6) -> DatasetRequest:
    scenarios = [load_scenario(scenario_dir() / "default.yaml"), load_scenario(scenario_dir() / "empty.yaml")]
    return DatasetRequest(scenarios, list(CAMERAS.values()), frames, seed, ROTATION, VariationOptions())


def test_the_same_seed_writes_the_same_dataset(tmp_path: Path) -> None:
    a = write_dataset(_request(7), tmp_path / "a")
    b = write_dataset(_request(7), tmp_path / "b")
    c = write_dataset(_request(8), tmp_path / "c")
    assert a == b and a != c
    for image in a["images"]:
        assert (tmp_path / "a" / image["file_name"]).read_bytes() == (tmp_path / "b" / image["file_name"]).read_bytes()
    frame_5 = write_dataset(_request(7, frames=6), tmp_path / "d")["annotations"]
    assert [x for x in frame_5 if x["image_id"] == 5] == [x for x in a["annotations"] if x["image_id"] == 5]


def test_upright_frames_and_boxes_agree_with_the_perceiver_on_the_raw_frame() -> None:
    """The dataset's upright box, mapped back to the raw frame, is where the shipped Perceiver
    (which turns the raw frame itself) finds the person."""
    spec = CAMERAS["frontleft_fisheye_image"]
    scenario = Scenario.model_validate({"objects": [_person(3.0, -0.5)]})
    raw = render_grey(spec, BODY, scenario, 0.0)
    (truth,) = frame_truth(spec, BODY, scenario, 0.0, ROTATION(spec.name))
    rotation = upright_rotation(ROTATION(spec.name), spec.width, spec.height)
    assert truth.mask.shape == rotation.apply(raw).shape  # the image the detector sees
    assert truth.bbox[3] - truth.bbox[1] > 2 * (truth.bbox[2] - truth.bbox[0])  # standing up in it
    truth_raw = rotation.boxes_to_source(np.array([truth.bbox]))[0]
    people = [d for d in Perceiver(DetectorConfig()).detect_objects(Frame(spec.name, raw, 0.0, 0.0)) if d.label == "person"]
    assert max(iou_matrix([tuple(truth_raw)], [d.box for d in people])[0]) >= 0.7


def test_the_cli_writes_images_and_coco_labels_the_evaluator_reads(tmp_path: Path) -> None:
    from agent.cli import _register, app

    _register()
    runner = CliRunner()
    out = tmp_path / "ds"
    args = ["sim", "dataset", "--frames", "5", "--out", str(out), "--seed", "3",
            "--cameras", "frontleft_fisheye_image,back_fisheye_image", "--scenario", "default"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    coco = json.loads((out / "labels.json").read_text())
    assert {c["id"]: c["name"] for c in coco["categories"]}.items() >= {1: "person", 13: "stop sign"}.items()
    cameras = [im["camera"] for im in coco["images"]]
    assert cameras == ["frontleft_fisheye_image", "back_fisheye_image"] * 2 + ["frontleft_fisheye_image"]
    for image in coco["images"]:
        grey = cv2.imread(str(out / image["file_name"]), cv2.IMREAD_UNCHANGED)
        assert grey.ndim == 2 and grey.shape == (image["height"], image["width"]) and image["upright"] is True
    for ann in coco["annotations"]:
        assert {"bbox", "area", "iscrowd", "distance_m", "truncated", "occluded"} <= ann.keys()
    assert len(load_coco(out / "labels.json")) == 5
    bad = runner.invoke(app, ["sim", "dataset", "--out", str(out), "--cameras", "nose_cam"])
    assert bad.exit_code == 2 and "unknown camera or appearance: nose_cam" in bad.output
    assert "dataset" in runner.invoke(app, ["sim", "--help"], terminal_width=200).output


def test_every_appearance_loads_and_stands_on_its_feet() -> None:
    from sim.render.people import appearance_texture
    from sim.scene import PERSON_APPEARANCES

    assert len(PERSON_APPEARANCES) >= 5 and "astronaut" in PERSON_APPEARANCES
    for name in PERSON_APPEARANCES:
        tex = appearance_texture(name)
        assert tex.alpha is not None and tex.height > 2 * tex.width
        rows = np.nonzero((tex.alpha[0] >= 128).any(axis=1))[0]
        assert rows[0] <= 2 and rows[-1] >= tex.height - 3  # head at the top, feet at the bottom


def test_dim_lighting_darkens_and_is_the_same_every_render() -> None:
    spec = CAMERAS["frontleft_fisheye_image"]
    bright = Scenario.model_validate({"objects": [_person(3.0, -0.5)]})
    dim = Scenario.model_validate({"objects": [_person(3.0, -0.5)], "lighting": {"gain": 0.3, "gamma": 1.4, "noise_sigma": 4}})
    a, b = render_grey(spec, BODY, dim, 1.0), render_grey(spec, BODY, dim, 1.0)
    assert np.array_equal(a, b)
    assert a.mean() < 0.35 * render_grey(spec, BODY, bright, 1.0).mean()
    assert not np.array_equal(a, render_grey(spec, BODY, dim, 1.1))  # fresh noise each frame time



def test_the_shipped_storeroom_is_cluttered_dim_and_still_shows_people() -> None:
    scenario = load_scenario(scenario_dir() / "people_clutter.yaml")
    assert {o.type for o in scenario.objects} >= {"wall", "box", "person", "stop_sign"}
    assert all(o.appearance != "astronaut" for o in scenario.objects if o.type == "person")
    spec = CAMERAS["frontright_fisheye_image"]
    raw = render_grey(spec, BODY, scenario, 3.0)
    assert raw.mean() < 90  # dim
    truths = frame_truth(spec, BODY, scenario, 3.0, ROTATION(spec.name))
    hidden = [t for t in truths if t.category == "person" and t.occluded > 0.3]
    assert hidden  # the one behind the crate
    people = [d for d in Perceiver(DetectorConfig()).detect_objects(Frame(spec.name, raw, 0.0, 0.0)) if d.label == "person"]
    assert max(d.score for d in people) >= 0.5
