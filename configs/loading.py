"""Load a YAML file into a pydantic model, with errors that name the file and the field.

Every config the project reads (agent settings, cue rules, detector settings, sim scenarios)
goes through here, so a bad file always fails the same readable way, in bounded time and memory:

    configs/rules/default.yaml: rules[2].cue.min_score: Input should be less than or equal to 1 (got 1.5)
    my_world.yaml: objects[1] (apriltag).tag_id: Input should be less than 587 (got 900)

(a member of a list of different kinds of things is named by its kind, the union's tag).

What a file may be (each limit fails with `ConfigError` before it can cost much):
- a regular file of at most `MAX_CONFIG_BYTES`, checked before it is read;
- strict UTF-8 text (the error says at which line the bad byte is);
- YAML with no duplicate keys (last-one-wins would hide a typo'd safety bound), nested at most
  `MAX_YAML_DEPTH` deep, and at most `MAX_YAML_NODES` values once aliases are expanded (so
  `&a [*a, *a]` chains cannot multiply into billions);
- values of the model's exact types: every config model derives from `StrictModel`, which
  turns off pydantic's coercion (`true` and `'0.5'` are not numbers) and rejects `.inf`/`.nan`
  (an infinite watchdog is a watchdog switched off). A YAML integer is still a float.
"""

from __future__ import annotations

import stat
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Strict,
    Tag,
    ValidationError,
    ValidationInfo,
)
from pydantic.fields import FieldInfo
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

M = TypeVar("M", bound=BaseModel)

MAX_CONFIG_BYTES = 256 * 1024
"""A config file larger than this is refused unread (the shipped ones are 1-6 kB). PyYAML's
pure-Python parser takes about 1 s for this much, so even a refused file costs little."""
MAX_YAML_DEPTH = 64
"""Deepest nesting of lists and mappings accepted (a sequence of sequences is ~8 deep)."""
MAX_YAML_NODES = 20_000
"""Most values (scalars, lists, mappings) a file may hold, aliases counted as often as used
(the shipped rules hold a few hundred). Counted while parsing, so a refusal comes early."""
MAX_ERRORS_SHOWN = 20

SHIPPED_DIR = Path(__file__).resolve().parent
"""Where the shipped YAML files are (inside site-packages after a plain install)."""


def resolve_relative(value: Path, base_dir: Path) -> Path:
    """A path written inside a config file: relative to that file's folder, else to the shipped one.

    So a copy of `agent.yaml` in the user's own folder keeps `rules: rules/default.yaml`
    pointing at the shipped rules until the user puts a `rules/default.yaml` beside it.
    """
    if value.is_absolute():
        return value
    beside = (base_dir / value).resolve()
    if beside.exists():
        return beside
    shipped_path = (SHIPPED_DIR / value).resolve()
    return shipped_path if shipped_path.exists() else beside


def _relative_to_the_config_file(value: Path, info: ValidationInfo) -> Path:
    config_path = (info.context or {}).get("config_path")
    if config_path is None:  # built in Python, not read from a file: taken as given
        return value
    return resolve_relative(value, Path(config_path).parent)


ConfigPath = Annotated[Path, Strict(False), AfterValidator(_relative_to_the_config_file)]
"""A path field: written as YAML text, so it is the one type `StrictModel` converts; a relative
path is taken relative to the config file it is written in (`resolve_relative`)."""


class ConfigError(ValueError):
    """A config file is missing, too large, not UTF-8 YAML, or does not match its schema."""


class StrictModel(BaseModel):
    """Base of every config model.

    - an unknown key is an error (a typo in a safety bound must not be silently ignored);
    - no coercion: `true`, `'0.5'` or `1.0` for an int are errors, not numbers (`strict`);
      a YAML integer is accepted for a float;
    - numbers are finite (`allow_inf_nan=False`): `.inf` must not turn a safety check off.
    - frozen: a loaded config is read, never changed in place (`model_copy(update=...)` or
      `agent.config.config_overrides` make a changed copy).
    Paths are the exception (YAML has no path type): declare them as `ConfigPath`.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


# --- reading -------------------------------------------------------------------------------


class _YamlLimitError(yaml.YAMLError):
    """A YAML document over one of the loader's bounds, or with a duplicate key."""

    def __init__(
        self, field: tuple[int | str, ...], problem: str, mark: Any, note: str = ""
    ) -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem
        self.mark = mark
        self.note = note


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded (depth, expanded size) and refusing duplicate keys.

    The composer is the recursive part of PyYAML (the scanner and parser keep explicit
    stacks), so depth and size are checked there, node by node, before anything deep or big
    has been built; duplicate keys are checked by the constructor on the keys as written
    (merge keys `<<` may be overridden, as YAML says).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._field: list[int | str] = []
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> values it stands for, aliases expanded
        self._total = 0  # values so far in the document, aliases expanded
        self._explicit: dict[int, tuple[list[tuple[Node, Node]], tuple[int | str, ...]]] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        part: int | str | None = None
        if isinstance(parent, SequenceNode) and isinstance(index, int):
            part = index
        elif isinstance(parent, MappingNode) and index is not None:
            part = index.value if isinstance(index, ScalarNode) else "?"
        if part is not None:
            self._field.append(part)
        self._depth += 1  # keys nest too, so depth is counted apart from the field path
        try:
            mark = self.peek_event().start_mark
            if self._depth > MAX_YAML_DEPTH:
                raise _YamlLimitError(
                    (), f"nested deeper than {MAX_YAML_DEPTH} levels", mark
                )
            is_alias = self.check_event(yaml.AliasEvent)
            node = super().compose_node(parent, index)
            self._account(node, is_alias, mark)
            return node
        finally:
            self._depth -= 1
            if part is not None:
                self._field.pop()

    def _account(self, node: Node, is_alias: bool, mark: Any) -> None:
        size = self._sizes.get(id(node))
        if is_alias:
            if size is None:  # an alias of a node that contains it: infinitely deep
                raise _YamlLimitError(tuple(self._field), "an alias refers to itself", mark)
            self._total += size
        else:
            if isinstance(node, SequenceNode):
                size = 1 + sum(self._sizes[id(child)] for child in node.value)
            elif isinstance(node, MappingNode):
                size = 1 + sum(self._sizes[id(k)] + self._sizes[id(v)] for k, v in node.value)
                self._explicit[id(node)] = (list(node.value), tuple(self._field))
            else:
                size = 1
            self._sizes[id(node)] = size
            self._total += 1
        if self._total > MAX_YAML_NODES:  # counted as it goes: fails early, not at the end
            raise _YamlLimitError(
                tuple(self._field),
                f"more than {MAX_YAML_NODES} values (aliases counted each time they are used)",
                mark,
            )

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        pairs, field = self._explicit.get(id(node), (node.value, ()))
        first: dict[Any, Node] = {}
        for key_node, _ in pairs:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                earlier = first.setdefault(key, key_node)
            except TypeError:  # unhashable key: the base class reports it
                continue
            if earlier is not key_node:
                raise _YamlLimitError(
                    (*field, str(key)),
                    "duplicate key",
                    key_node.start_mark,
                    f" (first at line {earlier.start_mark.line + 1})",
                )
        return super().construct_mapping(node, deep=deep)


def read_config_text(path: Path, what: str = "config file") -> str:
    """The text of a config file: a regular file within `MAX_CONFIG_BYTES`, strict UTF-8.
    `what` names the kind of file in the error ("scenario file")."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path}: not a regular file")
        if info.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(_too_large(path, info.st_size, what))
        with open(path, "rb") as f:  # bounded read: the file may grow between stat and read
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(_too_large(path, len(raw), what))
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line} "
            f"(offset {exc.start}); save the file as UTF-8"
        ) from None


def _too_large(path: Path, size: int, what: str) -> str:
    return (
        f"{path}: file is {size} bytes; a {what} may be at most {MAX_CONFIG_BYTES} bytes "
        f"({MAX_CONFIG_BYTES // 1024} KiB)"
    )


def read_yaml(path: Path | str, what: str = "config file") -> Any:
    """Parse a config file's YAML (bounded, no duplicate keys); `ConfigError` naming the file."""
    path = Path(path)
    text = read_config_text(path, what)
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _YamlLimitError as exc:
        where = f"{_field_path(exc.field)}: " if exc.field else ""
        raise ConfigError(f"{path}: {where}{exc.problem}{_at(exc.mark)}{exc.note}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError(f"{path}: not valid YAML{_at(mark)}: {problem}") from None
    except RecursionError:  # belt and braces: the depth bound should make this unreachable
        raise ConfigError(f"{path}: nested too deeply") from None
    finally:
        loader.dispose()


def _at(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


# --- validating ----------------------------------------------------------------------------


def _field_path(loc: tuple[int | str, ...], model: type[BaseModel] | None = None) -> str:
    """Readable field path: `rules[2].cue.min_score`; a member of a discriminated union is named
    after its item, `objects[1] (apriltag).tag_id` (pydantic puts the member's tag in the path)."""
    tags = _union_tag_positions(model, loc) if model is not None else set()
    out = ""
    for i, part in enumerate(loc):
        if i in tags:
            out += f" ({part})"
        elif isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<top level>"


def _union_tag_positions(model: type[BaseModel], loc: tuple[int | str, ...]) -> set[int]:
    """Where in `loc` pydantic put the tag of a discriminated union's member: found by walking
    `model`'s annotations along the path (a tag looks like any field name, only the model tells).
    Stops quietly at anything it does not follow (the rest of the path is then plain)."""
    found: set[int] = set()
    annotation: Any = model
    for i, part in enumerate(loc):
        annotation, discriminator = _unwrap(annotation)
        origin = get_origin(annotation)
        if discriminator is not None and origin in (Union, types.UnionType):
            found.add(i)
            annotation = _union_member(annotation, discriminator, part)
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
            field = annotation.model_fields.get(part)
            if field is None:
                break
            # A field's own discriminator is kept on its FieldInfo, not in its annotation.
            annotation = field.rebuild_annotation()
            if field.discriminator is not None:
                annotation = Annotated[annotation, field]
        elif isinstance(part, int) and origin in (list, tuple, set, frozenset, Sequence):
            args = get_args(annotation)
            annotation = args[part] if origin is tuple and args and args[-1] is not Ellipsis else args[0]
        elif origin in (dict, Mapping):
            annotation = get_args(annotation)[1]
        else:
            break
        if annotation is None:
            break
    return found


def _unwrap(annotation: Any) -> tuple[Any, Any]:
    """(the annotation without `Annotated` and `| None`, its union discriminator if any)."""
    discriminator = None
    while True:
        if get_origin(annotation) is Annotated:
            annotation, *metadata = get_args(annotation)
            for meta in metadata:
                if isinstance(meta, FieldInfo) and meta.discriminator is not None:
                    discriminator = meta.discriminator
                elif isinstance(meta, Discriminator):
                    discriminator = meta
            continue
        if get_origin(annotation) in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) == 1:  # Optional[X]: pydantic adds nothing to the path for it
                annotation = members[0]
                continue
        return annotation, discriminator


def _union_member(union: Any, discriminator: Any, tag: int | str) -> Any:
    """The member of a discriminated union that `tag` picks (None: not found)."""
    if isinstance(discriminator, Discriminator):
        discriminator = discriminator.discriminator
    for member in get_args(union):
        if get_origin(member) is Annotated:  # `Annotated[Model, Tag("name")]`
            inner, *metadata = get_args(member)
            if any(isinstance(meta, Tag) and meta.tag == tag for meta in metadata):
                return inner
            member = inner
        field = getattr(member, "model_fields", {}).get(discriminator) if isinstance(discriminator, str) else None
        if field is not None and tag in get_args(field.annotation):
            return member
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def format_validation_error(
    path: Path | str, err: ValidationError, model: type[BaseModel] | None = None
) -> str:
    """One line per error (at most `MAX_ERRORS_SHOWN`): `file: field.path: what is wrong (got x)`.
    Given the `model` that was validated, members of discriminated unions are named by their
    tag: `objects[1] (apriltag).tag_id`. Every config's errors (agent, rules, detector, sim
    scenario, a recording's embedded config) are worded by this one function."""
    lines = []
    errors = err.errors()
    for e in errors[:MAX_ERRORS_SHOWN]:
        got = e.get("input")
        got_text = "" if isinstance(got, (dict, list)) or got is None else f" (got {_shown(got)})"
        lines.append(f"{path}: {_field_path(tuple(e['loc']), model)}: {e['msg']}{got_text}")
    if len(errors) > MAX_ERRORS_SHOWN:
        lines.append(f"{path}: ... and {len(errors) - MAX_ERRORS_SHOWN} more errors")
    return "\n".join(lines)


def validate_config(path: Path | str, data: Any, model: type[M]) -> M:
    """Validate already-read YAML data against `model`; `ConfigError` naming file and field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data, context={"config_path": Path(path)})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc, model)) from None


def load_yaml_model(path: Path | str, model: type[M]) -> M:
    """Read, parse and validate a config file (see the module docstring for the bounds)."""
    return validate_config(path, read_yaml(path), model)


__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "SHIPPED_DIR",
    "ConfigError",
    "ConfigPath",
    "StrictModel",
    "format_validation_error",
    "load_yaml_model",
    "read_config_text",
    "read_yaml",
    "resolve_relative",
    "validate_config",
]
