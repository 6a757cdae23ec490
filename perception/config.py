"""Perception settings: which model, how to decode it, camera rotations, fiducial sizes.

Light on purpose (pydantic only) so the agent can validate a config without loading OpenCV or
LiteRT. Unknown keys are rejected; every field says what it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, Strict, field_validator

from configs.loading import ConfigPath, StrictModel, read_yaml, validate_config

MODELS_DIR = Path(__file__).resolve().parent / "models"
# NanoDet-g (COCO) at 384 x 288 for landscape frames, and its twin at 288 x 384 for portrait ones
# (the same weights; tools/convert_nanodet.py, models/README.md).
DEFAULT_MODEL = MODELS_DIR / "nanodet_g_coco_int8.tflite"
DEFAULT_MODEL_PORTRAIT = MODELS_DIR / "nanodet_g_coco_int8_portrait.tflite"
DEFAULT_LABELS = MODELS_DIR / "coco_labels.txt"
DEFAULT_MODEL_SHA256 = "2d41229832e138ee2e2e37880bb23876d47c901d6f7b3ee479a6681314221153"
DEFAULT_MODEL_PORTRAIT_SHA256 = "0006206fabfe6f3340b090ffb1d403f30ee1f623b5a9418b8a3ddb29460cc724"
# MoveNet MultiPose Lightning: people with 17 keypoints (decoder "movenet"); see models/README.md.
PERSON_MODEL = MODELS_DIR / "movenet_multipose_160_f16.tflite"
PERSON_LABELS = MODELS_DIR / "movenet_labels.txt"
PERSON_MODEL_SHA256 = "16543a4316ac3789032d31d099e5054232686b25d9e906d00b9f23978e324fe9"


@dataclass(frozen=True)
class ShippedModel:
    """A model file in models/: the detector always checks its digest and knows its labels."""

    sha256: str
    labels: Path
    # The file of the same weights at the transposed input size: the detector gives it the images
    # nearer its aspect (a portrait frame to a portrait input), so nobody is stretched.
    portrait: Path | None = None


SHIPPED_MODELS: dict[str, ShippedModel] = {
    DEFAULT_MODEL.name: ShippedModel(DEFAULT_MODEL_SHA256, DEFAULT_LABELS, portrait=DEFAULT_MODEL_PORTRAIT),
    DEFAULT_MODEL_PORTRAIT.name: ShippedModel(DEFAULT_MODEL_PORTRAIT_SHA256, DEFAULT_LABELS),
    PERSON_MODEL.name: ShippedModel(PERSON_MODEL_SHA256, PERSON_LABELS),
}
# Measured score curves of the shipped models (perception/calibration.py says what they mean).
SHIPPED_CALIBRATION = MODELS_DIR / "calibration.yaml"

SPOT_BODY_CAMERAS: tuple[str, ...] = (
    "frontleft_fisheye_image",
    "frontright_fisheye_image",
    "left_fisheye_image",
    "right_fisheye_image",
    "back_fisheye_image",
)
"""Image sources of Spot's five body cameras (grey fisheye), the names cue rules may watch."""


def camera_in_name(name: str) -> str | None:
    """The Spot body camera a file name names (`frontleft_fisheye_image_0042.jpg`, as the SDK's
    image examples name their files), or None. Longest name first, so
    "frontleft" is never taken for "left"."""
    lowered = name.lower()
    for camera in sorted(SPOT_BODY_CAMERAS, key=len, reverse=True):
        short = camera.removesuffix("_fisheye_image")
        # Bare "left" / "right" / "back" are ordinary words ("right_turn.jpg"); only the
        # front pair's short names are unambiguous.
        candidates = (camera, short + "_fisheye", *((short,) if short.startswith("front") else ()))
        for candidate in candidates:
            at = lowered.find(candidate)
            end = at + len(candidate)
            if at >= 0 and not lowered[at - 1 : at].isalpha() and not lowered[end : end + 1].isalpha():
                return camera
    return None

# Counter-clockwise degrees that turn each camera's image upright (scipy.ndimage.rotate /
# cv2.getRotationMatrix2D convention), as the Spot SDK examples rotate before showing or
# detecting: the front cameras are mounted sideways, the right one upside down.
DEFAULT_CAMERA_ROTATION_DEG: dict[str, float] = {
    "frontleft_fisheye_image": -78.0,
    "frontright_fisheye_image": -102.0,
    "right_fisheye_image": 180.0,
    "left_fisheye_image": 0.0,
    "back_fisheye_image": 0.0,
}


_Triple = Annotated[tuple[float, float, float], Strict(False)]  # a YAML list of three numbers
_Knot = Annotated[tuple[float, float], Strict(False)]  # a YAML [raw, calibrated] pair
_Pair = Annotated[tuple[float, float], Strict(False)]  # a YAML [low, high] pair
Calibration = dict[str, list[_Knot]]
_CALIBRATION_HELP = (
    "Per-class score curves, label -> [[raw, calibrated], ...] (perception/calibration.py); "
    "unset = the measured curves for a shipped model, none for others; {} = raw scores."
)


class PersonModelConfig(StrictModel):
    """The person model run beside the COCO detector (`detector.person_model`; null = none)."""

    model: ConfigPath | None = Field(
        None, description="TFLite person model; unset = the shipped MoveNet MultiPose Lightning."
    )
    labels: ConfigPath | None = Field(None, description="Labels file; unset = 'person' for the shipped model.")
    model_sha256: str | None = Field(None, description="Expected sha256 of the model file, checked on load.")
    decoder: Literal["auto", "movenet", "nanodet", "ssd", "yolo"] = Field(
        "auto", description="Output format; 'auto' picks it from the model's signature."
    )
    cameras: list[str] | None = Field(
        default_factory=lambda: list(SPOT_BODY_CAMERAS[:2]),
        description="Spot body cameras the person model looks for unsure people on (default: the "
        "front pair, which the shipped person rules watch); null = all. Other sources (files, videos, "
        "other cameras) always get it. On every camera it also checks a person box that covers most "
        "of the frame (a close-up, or a hallucination on a texture), which is dropped unless it "
        "confirms it.",
    )
    calibration: Calibration | None = Field(None, description=_CALIBRATION_HELP)
    second_stage: _Pair | None = Field(
        (0.1, 0.5),
        description="[low, high]: run only on frames where the COCO detector has a person scoring in "
        "[low, high) that no person scoring >= high already covers (the band where real frames' true "
        "and false people mix), on the square around those people, and only to rescore them (or add "
        "a person the COCO detector missed there); null = on every whole frame of its cameras.",
    )

    @field_validator("second_stage")
    @classmethod
    def _band(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not 0.0 <= v[0] < v[1] <= 1.0:
            raise ValueError(f"second_stage must be [low, high] with 0 <= low < high <= 1, got {list(v)}")
        return v

    @field_validator("cameras")
    @classmethod
    def _body_cameras(cls, v: list[str] | None) -> list[str] | None:
        unknown = sorted(set(v or ()) - set(SPOT_BODY_CAMERAS))
        if unknown:
            raise ValueError(f"not Spot body cameras: {unknown}; choose from {list(SPOT_BODY_CAMERAS)}")
        return v

    @property
    def model_path(self) -> Path:
        return self.model if self.model is not None else PERSON_MODEL


class NetworkComputeBridgeConfig(StrictModel):
    """Where the detector runs when `type: network_compute_bridge` (perception/network_compute.py)."""

    service: str = Field(
        "spot-cue-agent-worker",
        min_length=1,
        description="The worker's name in the robot's directory (what `spot-agent worker --service-name` registered).",
    )
    model: str = Field(
        "agent_perception",
        min_length=1,
        description="A model the worker lists (`ListAvailableModels`); `spot-agent worker`'s "
        "'agent_perception' is what the local detector runs (both models merged).",
    )
    address: str | None = Field(
        None,
        description="host:port to call the worker directly; unset = through the robot's NetworkComputeBridge service.",
    )
    timeout_s: float = Field(
        0.5, gt=0.0, le=10.0,
        description="Per frame; a worker slower than this is a perception stall (the watchdog stops the robot).",
    )
    min_confidence: float = Field(0.0, ge=0.0, le=1.0, description="Sent to the worker; `score_threshold` still applies here.")

    @field_validator("address")
    @classmethod
    def _host_port(cls, v: str | None) -> str | None:
        if v is not None:
            host, _, port = v.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"address must be host:port, got {v!r}")
        return v


class DetectorConfig(StrictModel):
    """The object detector and fiducial finder, as one config section (`detector:` in YAML)."""


    type: Literal["tflite", "network_compute_bridge"] = Field(
        "tflite",
        description="Where detection runs: 'tflite' on this computer (model, person_model), or "
        "'network_compute_bridge' on an NCB worker (the network_compute_bridge section).",
    )
    network_compute_bridge: NetworkComputeBridgeConfig = Field(
        default_factory=NetworkComputeBridgeConfig,
        description="The worker and model for type 'network_compute_bridge'.",
    )
    model: ConfigPath | None = Field(
        None, description="TFLite model file; unset = the shipped NanoDet-g COCO model."
    )
    labels: ConfigPath | None = Field(
        None,
        description="Labels file, one label a line (line index = class id); unset = a shipped "
        "model's own labels (COCO for NanoDet-g, 'person' for MoveNet), 'class_<id>' for others.",
    )
    model_sha256: str | None = Field(
        None,
        description="Expected sha256 of the model file, checked on load. The shipped model is "
        "always checked against its known digest.",
    )
    decoder: Literal["auto", "nanodet", "ssd", "yolo", "movenet"] = Field(
        "auto", description="Output format; 'auto' picks it from the model's signature."
    )
    score_threshold: float = Field(0.35, ge=0.0, le=1.0, description="Minimum detection score.")
    iou_threshold: float = Field(0.5, gt=0.0, le=1.0, description="Per-class NMS IoU threshold.")
    max_detections: int = Field(100, ge=1, description="At most this many detections per image.")
    num_threads: int = Field(2, ge=1, description="Interpreter (XNNPACK) threads.")
    label_offset: int = Field(
        0,
        description="Added to the model's class id before looking up its label (e.g. 1 for a "
        "labels file whose first line is a background '???').",
    )
    channel_order: Literal["bgr", "rgb"] | None = Field(
        None, description="Override the input channel order the decoder's format implies."
    )
    input_mean: _Triple | None = Field(
        None, description="Override per-channel mean (0..255 units, model's channel order)."
    )
    input_std: _Triple | None = Field(
        None, description="Override per-channel std (0..255 units, model's channel order)."
    )
    yolo_box_format: Literal["auto", "normalized", "pixels"] = Field(
        "auto", description="YOLO box units: normalised to the input (Ultralytics TFLite) or pixels."
    )
    camera_rotation_deg: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_CAMERA_ROTATION_DEG),
        description="Counter-clockwise degrees turning each camera's image upright before the "
        "detector runs (cameras not listed: 0).",
    )
    calibration: Calibration | None = Field(None, description=_CALIBRATION_HELP)
    person_model: PersonModelConfig | None = Field(
        default_factory=PersonModelConfig,
        description="A person model run beside the COCO detector, merged into one set of detections "
        "(one NMS on calibrated scores); null = the COCO detector alone.",
    )
    max_box_fraction: float = Field(
        0.85, gt=0.0, le=1.0,
        description="Boxes covering more than this share of the (upright) image are dropped: on the "
        "dev set every such person box was false (a cat, a baboon, fruit: 0.89-0.99 of the frame) "
        "while true close-ups covered at most 0.78.",
    )
    fiducials: bool = Field(True, description="Look for AprilTag 36h11 fiducials.")
    tag_size_m: float = Field(
        0.146, gt=0.0, description="Edge of a tag's black square in metres (default for all ids)."
    )
    tag_sizes_m: dict[int, float] = Field(
        default_factory=dict, description="Per-id tag sizes in metres, overriding tag_size_m."
    )

    @field_validator("model_sha256")
    @classmethod
    def _hex_digest(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 64 or any(c not in "0123456789abcdefABCDEF" for c in v)):
            raise ValueError("model_sha256 must be 64 hex digits")
        return v.lower() if v else v

    @field_validator("tag_sizes_m")
    @classmethod
    def _positive_sizes(cls, v: dict[int, float]) -> dict[int, float]:
        bad = {k: s for k, s in v.items() if s <= 0}
        if bad:
            raise ValueError(f"tag sizes must be > 0: {bad}")
        return v

    @property
    def model_path(self) -> Path:
        return self.model if self.model is not None else DEFAULT_MODEL

    def rotation_for(self, camera: str) -> float:
        return float(self.camera_rotation_deg.get(camera, 0.0))

    def tag_size_for(self, tag_id: int) -> float:
        return float(self.tag_sizes_m.get(tag_id, self.tag_size_m))

    @classmethod
    def from_yaml(cls, path: Path) -> DetectorConfig:
        """Load from a YAML file: either the section itself or a file with a `detector:` key
        (an agent config). `ConfigError` naming the file and the field if it is bad.

        Relative model / labels paths are taken relative to the YAML file.
        """
        data: Any = read_yaml(path)
        if isinstance(data, dict) and "detector" in data:
            cfg = validate_config(path, data, _DetectorSection).detector
        else:
            cfg = validate_config(path, data, cls)
        base = Path(path).resolve().parent
        updates = {
            k: base / p for k in ("model", "labels") if (p := getattr(cfg, k)) is not None and not p.is_absolute()
        }
        return cfg.model_copy(update=updates) if updates else cfg


class _DetectorSection(StrictModel):
    """The `detector:` section of a bigger file; the file's other sections are not ours."""

    model_config = ConfigDict(extra="ignore")

    detector: DetectorConfig


def read_labels(path: Path) -> list[str]:
    """One label a line; line index = class id. Blank lines keep their index (unnamed class)."""
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
