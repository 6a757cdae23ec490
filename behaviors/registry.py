"""The behavior base class, the registry of behaviors by name, and their parameter checking.

A behavior is a small state machine stepped by the engine at its tick rate: `step(now, pose)`
returns the motion commands to send now and, when it is over, sets `outcome`. Each behavior
declares a pydantic `Params` model; rules files and operator launches are checked against it,
so a wrong parameter fails when the file is loaded (or the launch is asked), never mid-run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from behaviors.commands import MotionCommand
from behaviors.deadman import StopBudget
from behaviors.geometry import RobotPose
from behaviors.limits import MotionLimits
from behaviors.memory import SightingMemory
from configs.loading import StrictModel
from perception.detection import Sighting

Outcome = Literal["succeeded", "failed"]


class BehaviorParams(StrictModel):
    """Base of every behavior's parameters, from a rules file or an operator launch: unknown
    keys are errors, and no coercion (`"1"` or `true` is not a distance, nor `true` a tag id)."""



@dataclass
class BehaviorContext:
    """What a behavior may use besides its parameters."""

    limits: MotionLimits
    memory: SightingMemory
    trigger: Sighting | None  # the sighting that fired the rule (None for operator launches)
    emit: Callable[[str, float, dict[str, Any]], None]  # (kind, time, data) -> engine event
    create: Callable[[BehaviorCall], Behavior]  # builds a sub-behavior (sequence steps)
    stop: StopBudget  # every motion command's deadline comes from it (behaviors/deadman.py)


class Behavior(ABC):
    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[BehaviorParams]]

    def __init__(self, params: BehaviorParams, ctx: BehaviorContext) -> None:
        self.params = params
        self.ctx = ctx
        self.outcome: Outcome | None = None
        self.detail = ""

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def finish(self, outcome: Outcome, detail: str = "") -> None:
        self.outcome, self.detail = outcome, detail

    @abstractmethod
    def step(self, now: float, pose: RobotPose) -> list[MotionCommand]:
        """Advance to `now`; return the commands to send now. Called until `done`."""


REGISTRY: dict[str, type[Behavior]] = {}


def register(cls: type[Behavior]) -> type[Behavior]:
    if cls.name in REGISTRY:
        raise ValueError(f"behavior {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def _relocated(title: str, prefix: tuple[str | int, ...], err: ValidationError) -> ValidationError:
    """`err` with every error's location put under `prefix` (e.g. ('params',))."""
    details = [
        InitErrorDetails(
            type=PydanticCustomError(e["type"], "{message}", {"message": e["msg"]}),
            loc=prefix + tuple(e["loc"]),
            input=e["input"],
        )
        for e in err.errors()
    ]
    return ValidationError.from_exception_data(title, details)


def unknown_behavior_error(title: str, loc: tuple[str | int, ...], name: Any) -> ValidationError:
    known = ", ".join(sorted(REGISTRY))
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError(
                    "unknown_behavior",
                    "unknown behavior; expected one of: {known}",
                    {"known": known},
                ),
                loc=loc,
                input=name,
            )
        ],
    )


class BehaviorCall(StrictModel):
    """A behavior by name with its parameters, checked against the behavior's `Params`."""

    behavior: str = Field(description="Behavior name (see `behaviors_catalog()`).")
    params: dict[str, Any] = Field(
        default_factory=dict, description="The behavior's parameters; omitted ones take defaults."
    )
    _validated: BehaviorParams | None = PrivateAttr(None)

    @model_validator(mode="wrap")
    @classmethod
    def _check_params(cls, data: Any, handler: Callable[[Any], BehaviorCall]) -> BehaviorCall:
        call = handler(data)
        behavior_cls = REGISTRY.get(call.behavior)
        if behavior_cls is None:
            raise unknown_behavior_error(cls.__name__, ("behavior",), call.behavior)
        try:
            call._validated = behavior_cls.Params.model_validate(call.params)
        except ValidationError as exc:
            raise _relocated(cls.__name__, ("params",), exc) from None
        return call

    @property
    def validated_params(self) -> BehaviorParams:
        assert self._validated is not None
        return self._validated


def _type_text(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        return " | ".join(_type_text(p) for p in prop["anyOf"])
    if "enum" in prop:
        return " | ".join(repr(v) for v in prop["enum"])
    if "const" in prop:
        return repr(prop["const"])
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    kind = prop.get("type", "any")
    if kind == "array" and "items" in prop:
        return f"list[{_type_text(prop['items'])}]"
    return str(kind)


def describe(cls: type[Behavior]) -> dict[str, Any]:
    """A behavior's name, summary and parameters (type, default, description), as plain data."""
    schema = cls.Params.model_json_schema()
    params = []
    for field_name, info in cls.Params.model_fields.items():
        prop = schema.get("properties", {}).get(field_name, {})
        required = info.is_required()
        params.append(
            {
                "name": field_name,
                "type": _type_text(prop),
                "required": required,
                "default": None if required else info.get_default(call_default_factory=True),
                "description": info.description or "",
            }
        )
    return {"name": cls.name, "description": cls.summary, "params": params, "schema": schema}
