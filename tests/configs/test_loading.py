"""The one validation-error formatter (`configs.loading.format_validation_error`): field paths
name discriminated-union members by their tag, found from the model (never guessed from the
path), and the sim's scenario errors are worded by it like every other config's."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import pytest
import yaml
from pydantic import Discriminator, Field, Tag, ValidationError

from configs.loading import ConfigError, StrictModel, format_validation_error, validate_config
from sim.scene import Scenario, ScenarioError, load_scenario


class Circle(StrictModel):
    kind: Literal["circle"]
    radius: float = Field(gt=0.0)


class Square(StrictModel):
    kind: Literal["square"]
    side: float = Field(gt=0.0)
    circle: int = 0  # a field named like another member's tag: must stay a plain field


Shape = Annotated[Circle | Square, Field(discriminator="kind")]


class Layer(StrictModel):
    shapes: list[Shape] = Field(default_factory=list)
    by_name: dict[str, Shape] = Field(default_factory=dict)
    main: Shape | None = None
    either: int | str = 0  # a plain (smart) union: pydantic names its members too, left as they are


class Drawing(StrictModel):
    layers: list[Layer] = Field(default_factory=list)
    only: Annotated[Circle | Square, Field(discriminator="kind")] | None = None


def _message(data: object, model: type[StrictModel] = Drawing) -> str:
    with pytest.raises(ConfigError) as err:
        validate_config("d.yaml", data, model)
    return str(err.value)


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ({"layers": [{"shapes": [{"kind": "circle", "radius": 0}]}]},
         "d.yaml: layers[0].shapes[0] (circle).radius: Input should be greater than 0 (got 0)"),
        ({"layers": [{}, {"by_name": {"a": {"kind": "square", "side": 1, "circle": "x"}}}]},
         "d.yaml: layers[1].by_name.a (square).circle: Input should be a valid integer (got 'x')"),
        ({"layers": [{"main": {"kind": "square"}}]}, "d.yaml: layers[0].main (square).side: Field required"),
        ({"only": {"kind": "circle", "colour": 1}}, "d.yaml: only (circle).colour: Extra inputs are not permitted"),
        ({"layers": [{"shapes": [{"kind": "hexagon"}]}]}, "d.yaml: layers[0].shapes[0]: Input tag 'hexagon'"),
        ({"layers": [{"either": 1.5}]}, "d.yaml: layers[0].either.int: Input should be a valid integer"),
        ({"layers": {"not": "a list"}}, "d.yaml: layers: Input should be a valid list"),
    ],
)
def test_union_members_are_named_by_their_tag(data: object, line: str) -> None:
    assert any(got.startswith(line) for got in _message(data).splitlines()), _message(data)


def test_a_field_named_like_a_tag_stays_a_field() -> None:
    """`circle` is both Circle's tag and a field of Square: only the model can tell them apart."""
    message = _message({"layers": [{"shapes": [{"kind": "square", "side": 2, "circle": "no"}]}]})
    assert message.startswith("d.yaml: layers[0].shapes[0] (square).circle: "), message


def test_callable_discriminators_name_the_tagged_member() -> None:
    class Picked(StrictModel):
        item: Annotated[
            Annotated[Circle, Tag("round")] | Annotated[Square, Tag("boxy")],
            Discriminator(lambda v: "round" if isinstance(v, dict) and "radius" in v else "boxy"),
        ]

    message = _message({"item": {"kind": "circle", "radius": -1}}, Picked)
    assert message.startswith("d.yaml: item (round).radius: "), message


def test_without_the_model_the_path_is_plain_and_top_level_errors_say_so() -> None:
    with pytest.raises(ValidationError) as err:
        Drawing.model_validate({"layers": [{"shapes": [{"kind": "circle", "radius": 0}]}]})
    assert format_validation_error("d.yaml", err.value).startswith("d.yaml: layers[0].shapes[0].circle.radius: ")
    assert format_validation_error("d.yaml", err.value, Drawing).startswith(
        "d.yaml: layers[0].shapes[0] (circle).radius: "
    )

    class Checked(StrictModel):
        a: int = 0

        def model_post_init(self, __context: object) -> None:
            if self.a < 0:
                raise ValueError("a must not be negative")

    assert _message({"a": -1}, Checked).startswith("d.yaml: <top level>: ")


def test_scenario_errors_are_the_shared_formatters_lines(tmp_path: Path) -> None:
    path = tmp_path / "world.yaml"
    path.write_text(
        "objects:\n"
        "  - {type: apriltag, tag_id: 900, size_m: 0.2, pose: {x: 1, y: 0, z: 0.4}}\n"
        "  - {type: person, pose: {x: 1, y: 0}, height_m: 9}\n"
    )
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert isinstance(err.value, ConfigError)  # one kind of config error for every config
    with pytest.raises(ValidationError) as raw:
        Scenario.model_validate(yaml.safe_load(path.read_text()))
    assert str(err.value) == format_validation_error(path, raw.value, Scenario)
    assert str(err.value).splitlines() == [
        f"{path}: objects[0] (apriltag).tag_id: Input should be less than 587 (got 900)",
        f"{path}: objects[1] (person).height_m: Input should be less than or equal to 2.3 (got 9)",
    ]
