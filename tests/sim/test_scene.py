"""Scenario files: shipped ones load, bad ones fail naming the file and the field, people walk."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sim.scene import (
    AprilTagObject,
    PersonObject,
    ScenarioError,
    StopSignObject,
    default_scenario_path,
    load_scenario,
    parse_scenario,
    scenario_dir,
)

SHIPPED = sorted(scenario_dir().glob("*.yaml"))


def test_shipped_scenarios_exist_and_load() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"default", "fiducial_ahead", "person_walking", "stop_sign", "empty"} <= names
    for path in SHIPPED:
        scenario = load_scenario(path)
        assert scenario.description, path
    assert default_scenario_path() == scenario_dir() / "default.yaml"
    default = load_scenario(default_scenario_path())
    kinds = {type(o) for o in default.objects}
    assert kinds == {AprilTagObject, StopSignObject, PersonObject}
    assert load_scenario(scenario_dir() / "empty.yaml").objects == []


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        (
            "objects:\n  - {type: apriltag, tag_id: 900, size_m: 0.2, pose: {x: 1, y: 0, z: 0.4}}\n",
            "objects[0] (apriltag).tag_id",
            "less than 587",
        ),
        (
            "objects:\n  - {type: apriltag, tag_id: 1, size_m: 0.2, colour: red, pose: {x: 1, y: 0, z: 0.4}}\n",
            "objects[0] (apriltag).colour",
            "Extra inputs are not permitted",
        ),
        (
            "objects:\n  - {type: person, pose: {x: 1, y: 0}}\n  - {type: stop_sign, pose: {x: 1, y: 0}}\n",
            "objects[1] (stop_sign).pose.z",
            "Field required",
        ),
        ("objects:\n  - {type: tree, pose: {x: 1, y: 0}}\n", "objects[0]", "'tree'"),
        ("robot_start: {x: 0, y: 0, yaw: 90}\n", "robot_start.yaw", "Extra inputs are not permitted"),
        (
            "objects:\n  - type: person\n    pose: {x: 1, y: 0}\n    path: {waypoints: [{x: 2, y: 0, speed_mps: 0}]}\n",
            "objects[0] (person).path.waypoints[0].speed_mps",
            "greater than 0",
        ),
        (
            "objects:\n  - {type: stop_sign, size_m: 0.6, pose: {x: 2, y: 0, z: 0.1}}\n",
            "objects[0] (stop_sign)",
            "size_m / 2",
        ),
        (
            "objects:\n  - {type: apriltag, tag_id: 4, size_m: 0.2, pose: {x: 1, y: 0, z: 0.4}}\n"
            "  - {type: apriltag, tag_id: 4, size_m: 0.2, pose: {x: 2, y: 0, z: 0.4}}\n",
            "<top level>",
            "tag_id 4 is used by more than one apriltag",
        ),
        (
            "objects:\n  - {type: person, appearance: lena, pose: {x: 1, y: 0}}\n",
            "objects[0] (person).appearance",
            "'astronaut'",
        ),
        (
            "objects:\n  - {type: wall, start: {x: 1, y: 0}, end: {x: 1, y: 0.01}}\n",
            "objects[0] (wall)",
            "at least 0.05 m apart",
        ),
        ("objects:\n  - {type: box, pose: {x: 1, y: 0}, height_m: 0}\n", "objects[0] (box).height_m", "greater than 0.05"),
        ("lighting: {gain: 0.3, gamma: 9}\n", "lighting.gamma", "less than or equal to 3"),
        ("floor: lava\n", "floor", "'concrete'"),
        ("backdrop_grey: 300\n", "backdrop_grey", "less than or equal to 255"),
    ],
)
def test_validation_error_names_file_and_field(tmp_path: Path, text: str, field: str, reason: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    message = str(err.value)
    assert str(path) in message
    assert f"{path}: {field}: " in message, message
    assert reason in message


def test_unreadable_and_non_yaml_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ScenarioError, match="nope.yaml: cannot read scenario file"):
        load_scenario(missing)
    bad = _write(tmp_path, "objects: [unclosed\n")
    with pytest.raises(ScenarioError, match="broken.yaml: not valid YAML"):
        load_scenario(bad)
    not_a_mapping = _write(tmp_path, "- just\n- a list\n")
    with pytest.raises(ScenarioError, match="broken.yaml"):
        load_scenario(not_a_mapping)


def test_empty_file_is_an_empty_world(tmp_path: Path) -> None:
    scenario = load_scenario(_write(tmp_path, ""))
    assert scenario.objects == [] and scenario.robot_start.x == 0.0


def test_person_walks_its_path_then_stops() -> None:
    scenario = parse_scenario(
        {
            "objects": [
                {
                    "type": "person",
                    "pose": {"x": 3.0, "y": 2.0, "yaw_deg": 45.0},
                    "path": {"waypoints": [{"x": 3.0, "y": 0.0, "speed_mps": 0.8}], "start_delay_s": 1.0},
                }
            ]
        },
        "test",
    )
    person = scenario.objects[0]
    assert person.pose_at(0.0) == pytest.approx((3.0, 2.0, math.radians(45.0)))
    assert person.pose_at(1.0) == pytest.approx((3.0, 2.0, math.radians(45.0)))
    x, y, yaw = person.pose_at(2.0)  # walked 1 s at 0.8 m/s towards -y
    assert (x, y) == pytest.approx((3.0, 1.2))
    assert yaw == pytest.approx(-math.pi / 2)
    assert person.pose_at(1.0 + 2.0 / 0.8)[:2] == pytest.approx((3.0, 0.0))
    assert person.pose_at(60.0) == pytest.approx((3.0, 0.0, -math.pi / 2))


def test_person_loops_back_to_start() -> None:
    scenario = parse_scenario(
        {
            "objects": [
                {
                    "type": "person",
                    "pose": {"x": 0.0, "y": 0.0},
                    "path": {
                        "waypoints": [{"x": 2.0, "y": 0.0, "speed_mps": 1.0}, {"x": 2.0, "y": 1.0, "speed_mps": 0.5}],
                        "at_end": "loop",
                    },
                }
            ]
        },
        "test",
    )
    person = scenario.objects[0]
    # Legs: 2 s out, 2 s up (at 0.5 m/s), sqrt(5) s back at the first waypoint's speed.
    period = 4.0 + math.sqrt(5.0)
    assert person.pose_at(1.0)[:2] == pytest.approx((1.0, 0.0))
    assert person.pose_at(3.0)[:2] == pytest.approx((2.0, 0.5))
    back = person.pose_at(4.0 + math.sqrt(5.0) / 2)
    assert back[:2] == pytest.approx((1.0, 0.5))
    assert back[2] == pytest.approx(math.atan2(-1.0, -2.0))
    assert person.pose_at(1.0 + 3 * period)[:2] == pytest.approx((1.0, 0.0))


def test_shipped_person_walking_ends_three_metres_ahead() -> None:
    scenario = load_scenario(scenario_dir() / "person_walking.yaml")
    (person,) = scenario.objects
    x0, y0, _ = person.pose_at(0.0)
    x1, y1, _ = person.pose_at(30.0)
    assert abs(y0) > 1.5  # starts off to the side
    assert (x1, y1) == pytest.approx((3.0, 0.0))


@pytest.mark.parametrize("yaw_deg", [180.0, 90.0, -30.0])
def test_tag_frame_convention(yaw_deg: float) -> None:
    """z out of the face (along yaw), y up, x to the reader's right; origin at the tag centre."""
    pose = {"x": 1.0, "y": 2.0, "z": 0.5, "yaw_deg": yaw_deg}
    scenario = parse_scenario({"objects": [{"type": "apriltag", "tag_id": 5, "size_m": 0.15, "pose": pose}]}, "test")
    mat = scenario.objects[0].odom_tform_tag().to_matrix()
    yaw = math.radians(yaw_deg)
    face = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    np.testing.assert_allclose(mat[:3, 3], [1.0, 2.0, 0.5], atol=1e-9)
    np.testing.assert_allclose(mat[:3, 2], face, atol=1e-9)
    np.testing.assert_allclose(mat[:3, 1], [0.0, 0.0, 1.0], atol=1e-9)
    # A reader facing the tag looks along -face; their right is (-face) x up.
    np.testing.assert_allclose(mat[:3, 0], np.cross(-face, [0.0, 0.0, 1.0]), atol=1e-9)
