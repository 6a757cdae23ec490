"""The rules file (`configs/rules/*.yaml`): cues, rules and motion limits, checked at start.

    limits: {max_speed_mps: 0.5, ...}
    cues:
      stop_sign_ahead: {label: stop sign, cameras: [...], min_score: 0.5, max_distance_m: 3}
    rules:
      - {name: stop_at_stop_sign, cue: stop_sign_ahead, behavior: sequence,
         params: {steps: [{behavior: stop}, {behavior: sit}]}, priority: 80, cooldown_s: 30}

A bad file fails as a whole with the file, the field and what was expected, e.g.
`configs/rules/default.yaml: rules[1].cue: unknown cue; defined cues: person_close, ...`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from behaviors.library import build_behavior  # importing it fills the behavior registry
from behaviors.limits import MotionLimits
from behaviors.memory import SightingMemory
from behaviors.registry import BehaviorCall
from configs.loading import ConfigError, StrictModel, format_validation_error, load_yaml_model
from perception.config import SPOT_BODY_CAMERAS
from perception.detection import Sighting

TAG_LABEL = re.compile(r"^tag:(\d+)$")
COCO_LABELS_FILE = (
    Path(__file__).resolve().parent.parent / "perception" / "models" / "coco_labels.txt"
)


class ImageRegion(StrictModel):
    """Part of the original (unrotated) image, as fractions of its width and height."""

    x1: float = Field(ge=0.0, le=1.0, description="Left edge, fraction of the image width.")
    y1: float = Field(ge=0.0, le=1.0, description="Top edge, fraction of the image height.")
    x2: float = Field(ge=0.0, le=1.0, description="Right edge, fraction of the image width.")
    y2: float = Field(ge=0.0, le=1.0, description="Bottom edge, fraction of the image height.")

    @model_validator(mode="after")
    def _ordered(self) -> ImageRegion:
        if not (self.x1 < self.x2 and self.y1 < self.y2):
            raise ValueError("region needs x1 < x2 and y1 < y2")
        return self

    def contains(self, u: float, v: float) -> bool:
        return self.x1 <= u <= self.x2 and self.y1 <= v <= self.y2


class Persistence(StrictModel):
    """How long something must be seen before the cue is present, and missed before it is not."""

    seen_in: int = Field(
        3,
        ge=1,
        le=100,
        description="Present once seen in this many (K) of the last of_last frames.",
    )
    of_last: int = Field(
        5, ge=1, le=100, description="Window (N frames) per camera for the K-of-N test."
    )
    clear_after_misses: int = Field(
        6,
        ge=1,
        le=1000,
        description="Absent again after this many consecutive frames (M) of the cue's cameras, "
        "all cameras counted together, without it (hysteresis).",
    )
    timeout_s: float = Field(
        1.0,
        gt=0.0,
        le=60.0,
        description="Absent when not seen for this long, s, even without frames (a stalled "
        "camera must not keep a cue alive).",
    )

    @model_validator(mode="after")
    def _k_le_n(self) -> Persistence:
        if self.seen_in > self.of_last:
            raise ValueError(f"seen_in ({self.seen_in}) must be <= of_last ({self.of_last})")
        return self


class CueSpec(StrictModel):
    """Something seen, where and how: a detector label or an AprilTag, with filters."""

    label: str = Field(
        description="COCO label of the detector (e.g. 'person', 'stop sign') or 'tag:<id>' for an "
        "AprilTag; a bare integer means that tag id."
    )
    cameras: list[str] | None = Field(
        None,
        min_length=1,
        description="Image sources this cue watches; None: all cameras the agent streams.",
    )
    min_score: float = Field(0.5, ge=0.0, le=1.0, description="Lowest detector score accepted.")
    min_box_area_frac: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Smallest box area as a fraction of the image area. Area rather than height "
        "because Spot's front cameras are mounted sideways (an upright person is wide in the "
        "original image).",
    )
    min_distance_m: float | None = Field(
        None,
        ge=0.0,
        description="Only sightings at least this far, m (unknown distance never matches).",
    )
    max_distance_m: float | None = Field(
        None,
        gt=0.0,
        description="Only sightings at most this far, m (unknown distance never matches).",
    )
    max_abs_bearing_deg: float | None = Field(
        None,
        gt=0.0,
        le=180.0,
        description="Only sightings within this angle of straight ahead, deg ('ahead'; unknown "
        "bearing never matches).",
    )
    region: ImageRegion | None = Field(
        None,
        description="Only sightings whose box centre is inside this part of the original image.",
    )
    persistence: Persistence = Field(
        default_factory=Persistence, description="K-of-N presence and hysteresis."
    )

    @field_validator("label", mode="before")
    @classmethod
    def _label(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return f"tag:{value}"
        if isinstance(value, str):
            value = value.strip()
            if value.lower().startswith("tag:") and not TAG_LABEL.match(value):
                raise ValueError(
                    "a tag label is written 'tag:<id>' with an integer id, e.g. 'tag:1'"
                )
        return value

    @field_validator("cameras")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("cameras must be unique")
        return value

    @model_validator(mode="after")
    def _distance_range(self) -> CueSpec:
        if (
            self.min_distance_m is not None
            and self.max_distance_m is not None
            and self.min_distance_m >= self.max_distance_m
        ):
            raise ValueError("min_distance_m must be smaller than max_distance_m")
        return self

    @property
    def is_tag(self) -> bool:
        return TAG_LABEL.match(self.label) is not None

    def watches(self, camera: str) -> bool:
        return self.cameras is None or camera in self.cameras


class RuleSpec(BehaviorCall):
    """When a cue becomes present, launch a behavior (subject to priority and cooldown)."""

    name: str = Field(min_length=1, description="Rule name, unique in the file (events use it).")
    cue: str = Field(description="Name of a cue defined under `cues`.")
    priority: int = Field(
        ge=0,
        le=100,
        description="Higher pre-empts lower; a rule firing while an equal or higher one runs "
        "is ignored.",
    )
    cooldown_s: float = Field(
        5.0,
        ge=0.0,
        le=3600.0,
        description="After firing, the rule does not fire again for this long, s.",
    )
    while_cue_present: bool = Field(
        False,
        description="End the behavior when the cue clears (e.g. hold still while a person is "
        "close).",
    )
    safety: bool = Field(
        False,
        description="Safety rule: pre-empts every non-safety behavior, operator launches "
        "included (e.g. stop when a person is close).",
    )
    enabled: bool = Field(True, description="Disabled rules are kept in the file but never fire.")


def _error(
    loc: tuple[str | int, ...], kind: str, message: str, value: Any, **ctx: Any
) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message, ctx), loc=loc, input=value)


def _cannot_start(rule: RuleSpec, cue: CueSpec, limits: MotionLimits) -> str | None:
    """Why the rule's behavior could not start when its cue fires, or None.

    Builds the behavior once with a stand-in sighting of the cue's label, so context checks
    (e.g. go_to_fiducial on a cue that is not a tag and no tag_id) fail at load, not on the robot.
    """
    stand_in = Sighting(
        label=cue.label,
        score=1.0,
        camera="",
        box=(0.0, 0.0, 0.0, 0.0),
        image_size=(0, 0),
        time_local=0.0,
    )
    try:
        build_behavior(rule, limits, SightingMemory(), stand_in, lambda kind, time, data: None)
    except ValueError as exc:
        return str(exc)
    return None


class RulesConfig(StrictModel):
    """A rules file: motion limits, named cues, and the rules that map cues to behaviors."""

    limits: MotionLimits = Field(
        default_factory=MotionLimits, description="Speed, distance and deadline caps."
    )
    cues: dict[str, CueSpec] = Field(default_factory=dict, description="Cues by name.")
    rules: list[RuleSpec] = Field(
        default_factory=list, description="Rules, in priority tie-break order."
    )

    @model_validator(mode="wrap")
    @classmethod
    def _cross_references(cls, data: Any, handler: Callable[[Any], RulesConfig]) -> RulesConfig:
        config = handler(data)
        errors: list[InitErrorDetails] = []
        known = ", ".join(config.cues) or "(none)"
        seen: set[str] = set()
        for i, rule in enumerate(config.rules):
            if rule.cue not in config.cues:
                errors.append(
                    _error(
                        ("rules", i, "cue"),
                        "unknown_cue",
                        "unknown cue; defined cues: {known}",
                        rule.cue,
                        known=known,
                    )
                )
            if rule.name in seen:
                errors.append(
                    _error(
                        ("rules", i, "name"), "duplicate_rule", "rule name used twice", rule.name
                    )
                )
            seen.add(rule.name)
            cue = config.cues.get(rule.cue)
            if cue is not None:
                problem = _cannot_start(rule, cue, config.limits)
                if problem is not None:
                    errors.append(
                        _error(
                            ("rules", i, "params"),
                            "cannot_start",
                            "{problem}",
                            rule.params,
                            problem=problem,
                        )
                    )
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return config

    def check_labels(self, known_labels: Iterable[str]) -> list[InitErrorDetails]:
        """Errors for cue labels the detector does not know (tag labels are always fine)."""
        labels = set(known_labels)
        errors = []
        for name, cue in self.cues.items():
            if cue.is_tag or cue.label in labels:
                continue
            close = difflib.get_close_matches(cue.label, sorted(labels), n=3)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            errors.append(
                _error(
                    ("cues", name, "label"),
                    "unknown_label",
                    "not a label of the detector nor 'tag:<id>'{hint}",
                    cue.label,
                    hint=hint,
                )
            )
        return errors


    def check_cameras(self, cameras: Iterable[str], what: str) -> list[InitErrorDetails]:
        """Errors for cue cameras not in `cameras` (such a cue could never fire)."""
        known = list(cameras)
        errors = []
        for name, cue in self.cues.items():
            for i, camera in enumerate(cue.cameras or []):
                if camera in known:
                    continue
                close = difflib.get_close_matches(camera, known, n=1, cutoff=0.8)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                errors.append(
                    _error(
                        ("cues", name, "cameras", i),
                        "unknown_camera",
                        "not {what}{hint}: {known}",
                        camera,
                        what=what,
                        hint=hint,
                        known=", ".join(known),
                    )
                )
        return errors


def coco_labels() -> list[str]:
    """The shipped detector's labels, one a line (line index = class id)."""
    return [line.strip() for line in COCO_LABELS_FILE.read_text().splitlines() if line.strip()]


def load_rules(
    path: Path | str,
    known_labels: Iterable[str] | None = None,
    cameras: Iterable[str] | None = None,
) -> RulesConfig:
    """Read and check a rules file; raises `ConfigError` naming the file and the field.

    Cue labels are checked against `known_labels` (default: the shipped COCO detector's), so
    a typo such as 'stopsign' fails at start instead of silently never firing. Cue cameras are
    checked against `cameras`, the image sources the agent streams (`cameras.sources` of the
    agent config); default: Spot's five body cameras.
    """
    config = load_yaml_model(path, RulesConfig)
    errors = config.check_labels(coco_labels() if known_labels is None else known_labels)
    if cameras is None:
        errors += config.check_cameras(SPOT_BODY_CAMERAS, "one of Spot's body cameras")
    else:
        errors += config.check_cameras(cameras, "a camera the agent streams (cameras.sources)")
    if errors:
        raise ConfigError(
            format_validation_error(
                path, ValidationError.from_exception_data("RulesConfig", errors)
            )
        )
    return config
