"""Rules files: the shipped ones load; a bad one fails naming the file, field and expectation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from behaviors.config import RulesConfig, load_rules
from behaviors.engine import CueEngine
from configs import SHIPPED_DIR as CONFIG_DIR
from configs.loading import ConfigError

RULES_DIR = CONFIG_DIR / "rules"

GOOD = """
cues:
  sign: {label: stop sign, max_distance_m: 3}
rules:
  - {name: sit_at_sign, cue: sign, behavior: sit, priority: 10}
"""


@pytest.mark.parametrize("name", ["default.yaml", "follow.yaml", "fiducial.yaml"])
def test_shipped_rules_load_and_build_an_engine(name: str) -> None:
    config = load_rules(RULES_DIR / name)
    assert config.rules and all(rule.cue in config.cues for rule in config.rules)
    CueEngine(config)


def test_default_rules_rank_safety_above_motion() -> None:
    config = load_rules(RULES_DIR / "default.yaml")
    by_name = {r.name: r for r in config.rules}
    person, sign = by_name["hold_for_close_person"], by_name["sit_at_stop_sign"]
    tag1, tag2 = by_name["go_to_tag_1_and_sit"], by_name["stand_at_tag_2"]
    assert person.priority > sign.priority > tag1.priority > tag2.priority
    assert person.while_cue_present and config.cues[person.cue].max_distance_m == 1.5
    assert config.cues[sign.cue].max_distance_m == 3.0
    # a tag close enough to fire gives a goal within the go-to distance cap
    assert config.cues[tag1.cue].max_distance_m < config.limits.max_goal_distance_m


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": "), message  # every error names the file
    return message


def test_good_file_loads(tmp_path: Path) -> None:
    config = load_rules(write(tmp_path, GOOD))
    assert isinstance(config, RulesConfig) and config.rules[0].name == "sit_at_sign"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # bad type
        (
            GOOD.replace("max_distance_m: 3", "max_distance_m: far"),
            "cues.sign.max_distance_m: Input should be a valid number",
        ),
        (
            GOOD.replace("priority: 10", "priority: high"),
            "rules[0].priority: Input should be a valid integer",
        ),
        # out of range
        (
            GOOD.replace("max_distance_m: 3", "min_score: 1.5"),
            "cues.sign.min_score: Input should be less than or equal to 1 (got 1.5)",
        ),
        # unknown key
        (
            GOOD.replace("max_distance_m: 3", "max_dist: 3"),
            "cues.sign.max_dist: Extra inputs are not permitted",
        ),
        (
            GOOD.replace("priority: 10", "priority: 10, prio: 3"),
            "rules[0].prio: Extra inputs are not permitted",
        ),
        (
            GOOD + "limits: {max_speed_mps: 9}\n",
            "limits.max_speed_mps: Input should be less than or equal to 1.6",
        ),
        (
            GOOD + "limits: {velocity_deadline_s: 0.6}\n",
            "limits: Value error, velocity_deadline_s is no longer set here",
        ),
        # unknown behavior name
        (
            GOOD.replace("behavior: sit", "behavior: sitt"),
            "rules[0].behavior: unknown behavior; expected one of: follow, go_to_fiducial, hold",
        ),
        # unknown cue reference
        (
            GOOD.replace("cue: sign", "cue: sigm"),
            "rules[0].cue: unknown cue; defined cues: sign (got 'sigm')",
        ),
        # behavior params, top level and nested in a sequence
        (
            GOOD.replace("behavior: sit,", "behavior: follow, params: {distance_m: -1},"),
            "rules[0].params.distance_m: Input should be greater than or equal to 0.5",
        ),
        (
            GOOD.replace("behavior: sit,", "behavior: sit, params: {seconds: 2},"),
            "rules[0].params.seconds: Extra inputs are not permitted",
        ),
        (
            GOOD.replace(
                "behavior: sit,",
                "behavior: sequence, params: {steps: [{behavior: stop}, {behavior: jump}]},",
            ),
            "rules[0].params.steps[1].behavior: unknown behavior",
        ),
        # a behavior that could never start from this cue
        (
            GOOD.replace("behavior: sit,", "behavior: go_to_fiducial,"),
            "rules[0].params: go_to_fiducial: params.tag_id is required",
        ),
        # cue semantics
        (
            GOOD.replace("label: stop sign", "label: stopsign"),
            "cues.sign.label: not a label of the detector nor 'tag:<id>' "
            "(did you mean 'stop sign'?)",
        ),
        (
            GOOD.replace("label: stop sign", "label: 'tag:one'"),
            "cues.sign.label: Value error, a tag label is written 'tag:<id>'",
        ),
        (
            GOOD.replace("max_distance_m: 3", "persistence: {seen_in: 5, of_last: 3}"),
            "cues.sign.persistence: Value error, seen_in (5) must be <= of_last (3)",
        ),
        (
            GOOD.replace("max_distance_m: 3", "region: {x1: 0.6, y1: 0, x2: 0.4, y2: 1}"),
            "cues.sign.region: Value error, region needs x1 < x2",
        ),
        (
            GOOD + "  - {name: sit_at_sign, cue: sign, behavior: stand, priority: 5}\n",
            "rules[1].name: rule name used twice",
        ),
        # not YAML / not a mapping
        ("rules: [\n", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping at the top level"),
    ],
)
def test_bad_files_name_the_field_and_what_was_expected(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in load_error(tmp_path, text)


def test_integer_label_means_a_tag(tmp_path: Path) -> None:
    config = load_rules(write(tmp_path, GOOD.replace("label: stop sign", "label: 7")))
    assert config.cues["sign"].label == "tag:7"


def test_labels_of_another_detector(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("label: stop sign", "label: forklift"))
    assert load_rules(path, known_labels=["forklift", "pallet"]).cues["sign"].label == "forklift"
    with pytest.raises(ConfigError, match="cues.sign.label"):
        load_rules(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.yaml: cannot read config file"):
        load_rules(tmp_path / "nope.yaml")


# --- bad input: the shared loader's bounds and strict types (issue 11) ----------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a duplicate key would otherwise silently win (0.3 m/s written, 1.5 m/s driven)
        (
            GOOD + "limits:\n  max_speed_mps: 0.3\n  max_speed_mps: 1.5\n",
            "limits.max_speed_mps: duplicate key at line 8, column 3 (first at line 7)",
        ),
        (
            GOOD.replace("priority: 10}", "priority: 10, priority: 90}"),
            "rules[0].priority: duplicate key",
        ),
        # no coercion: a boolean or a string is not a number
        (
            GOOD.replace("max_distance_m: 3", "min_score: true"),
            "cues.sign.min_score: Input should be a valid number (got True)",
        ),
        (
            GOOD.replace("max_distance_m: 3", "min_score: '0.5'"),
            "cues.sign.min_score: Input should be a valid number (got '0.5')",
        ),
        (
            GOOD + "limits: {max_speed_mps: '0.5'}\n",
            "limits.max_speed_mps: Input should be a valid number (got '0.5')",
        ),
        (
            GOOD.replace("priority: 10", "priority: 10.0"),
            "rules[0].priority: Input should be a valid integer (got 10.0)",
        ),
        (
            GOOD.replace("behavior: sit,", "behavior: follow, params: {distance_m: '2'},"),
            "rules[0].params.distance_m: Input should be a valid number (got '2')",
        ),
        (
            GOOD.replace("behavior: sit,", "behavior: go_to_fiducial, params: {tag_id: true},"),
            "rules[0].params.tag_id: Input should be a valid integer (got True)",
        ),
        # numbers are finite
        (
            GOOD.replace("max_distance_m: 3", "max_distance_m: .inf"),
            "cues.sign.max_distance_m: Input should be a finite number (got inf)",
        ),
        (
            GOOD.replace("max_distance_m: 3", "min_distance_m: .nan"),
            "cues.sign.min_distance_m: Input should be a finite number (got nan)",
        ),
        # cameras: a cue watching a camera Spot does not have could never fire
        (
            GOOD.replace("max_distance_m: 3", "cameras: [frontleft_fisheye]"),
            "cues.sign.cameras[0]: not one of Spot's body cameras (did you mean "
            "'frontleft_fisheye_image'?): frontleft_fisheye_image, ",
        ),
        # too deep, too many values once aliases are expanded, not UTF-8
        ("cues: " + "[" * 100_000 + "]" * 100_000 + "\n", "nested deeper than 64 levels"),
        (
            "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                      for p, c in zip("abcdefgh", "bcdefghi")),
            "more than 20000 values",
        ),
        ("x: &a [1, *a]\n", "x[1]: an alias refers to itself"),
    ],
)
def test_bad_input_names_the_file_and_the_field(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in load_error(tmp_path, text)


def test_integers_are_numbers_and_merge_keys_may_override(tmp_path: Path) -> None:
    text = GOOD + "limits: {max_speed_mps: 1, max_yaw_rate_rps: 1}\n"
    text = text.replace(
        "sign: {label: stop sign, max_distance_m: 3}",
        "base: &base {label: stop sign, max_distance_m: 3}\n  sign: {<<: *base, max_distance_m: 2}",
    )
    config = load_rules(write(tmp_path, text))
    assert config.limits.max_speed_mps == 1.0 and isinstance(config.limits.max_speed_mps, float)
    assert config.cues["sign"].max_distance_m == 2.0


def test_cue_cameras_must_be_streamed_by_the_agent(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("max_distance_m: 3", "cameras: [back_fisheye_image]"))
    assert load_rules(path).cues["sign"].cameras == ["back_fisheye_image"]  # Spot has it
    with pytest.raises(ConfigError) as info:
        load_rules(path, cameras=["frontleft_fisheye_image", "frontright_fisheye_image"])
    assert str(info.value) == (
        f"{path}: cues.sign.cameras[0]: not a camera the agent streams (cameras.sources): "
        "frontleft_fisheye_image, frontright_fisheye_image (got 'back_fisheye_image')"
    )
    # a payload camera the agent streams is fine
    path = write(tmp_path, GOOD.replace("max_distance_m: 3", "cameras: [ptz]"))
    assert load_rules(path, cameras=["ptz"]).cues["sign"].cameras == ["ptz"]


def test_not_utf8_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(GOOD.encode() + b"# caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert str(info.value) == (
        f"{path}: not UTF-8 text: byte 0xe9 at line 6 (offset {len(GOOD) + 5}); "
        "save the file as UTF-8"
    )


def test_huge_file_and_fifo_are_refused_unread(tmp_path: Path) -> None:
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as f:  # 50 MB, sparse: refused from its size, before any read
        f.truncate(50 * 1024 * 1024)
    with pytest.raises(ConfigError, match=r"huge\.yaml: file is 52428800 bytes; a config file "
                       r"may be at most 262144 bytes \(256 KiB\)"):
        load_rules(huge)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # opening it would block until a writer comes
    with pytest.raises(ConfigError, match=r"fifo\.yaml: not a regular file"):
        load_rules(fifo)
