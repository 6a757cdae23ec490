"""Load a YAML file into a pydantic model, with errors that name the file and the field.

Every config the project reads (agent settings, cue rules, sim scenarios) goes through here,
so a bad file always fails the same readable way:

    configs/rules/default.yaml: rules[2].cue.min_score: Input should be less than or equal to 1 (got 1.5)
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A config file is missing, is not YAML, or does not match its schema."""


class StrictModel(BaseModel):
    """Base of every config model: an unknown key is an error (a typo in a safety bound must not
    be silently ignored)."""

    model_config = ConfigDict(extra="forbid")


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def format_validation_error(path: Path | str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        got = e.get("input")
        got_text = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
        lines.append(f"{path}: {_field_path(tuple(e['loc']))}: {e['msg']}{got_text}")
    return "\n".join(lines)


def load_yaml_model(path: Path | str, model: type[M]) -> M:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data, context={"config_path": path})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from exc
