"""The agent's settings (`configs/agent.yaml`, `configs/sim.yaml`), validated with pydantic.

Unknown keys are errors (a typo in a safety bound must not be silently ignored), every field
says what it is for, and relative paths (the rules file, a CA certificate, payload
credentials) are taken relative to the config file, so a config directory can be moved whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from agent.control.config import ControlConfig
from agent.recording.segments import RecordingConfig
from behaviors.deadman import StopBudget
from configs import resolve_relative
from configs.loading import ConfigPath, load_yaml_model
from configs.loading import StrictModel as _Strict
from perception.config import DetectorConfig

FRONT_CAMERAS = ["frontleft_fisheye_image", "frontright_fisheye_image"]


def _relative_to_config(value: Path | None, info: ValidationInfo) -> Path | None:
    """Resolve `value` against the directory of the config file being loaded (then the shipped
    configs), if any."""
    if value is None or value.is_absolute():
        return value
    config_path = (info.context or {}).get("config_path")
    if config_path is None:
        return value
    return resolve_relative(value, Path(config_path).parent)


class AuthConfig(_Strict):
    """How the agent proves who it is to the robot: a user account or payload credentials."""

    username_env: str = Field(
        "BOSDYN_CLIENT_USERNAME", description="Environment variable holding the robot user name."
    )
    password_env: str = Field(
        "BOSDYN_CLIENT_PASSWORD", description="Environment variable holding the robot password."
    )
    username: str | None = Field(
        None, description="User name, if not taken from the environment (prefer the environment)."
    )
    password: str | None = Field(
        None, description="Password, if not taken from the environment (prefer the environment)."
    )
    payload_credentials_file: ConfigPath | None = Field(
        None,
        description="File with the payload GUID on its first line and its secret on the second "
        "(the format `bosdyn.client.util.read_payload_credentials` reads). When set, the agent "
        "authenticates as a registered payload instead of a user.",
    )

    @field_validator("payload_credentials_file")
    @classmethod
    def _resolve_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _relative_to_config(value, info)


class RobotConfig(_Strict):
    """Which robot to talk to and how."""

    hostname: str = Field("192.168.80.3", description="Robot address (192.168.50.3 from a payload).")
    port: int = Field(443, ge=1, le=65535, description="TLS port of the robot's gRPC services.")
    ca_cert: ConfigPath | None = Field(
        None, description="CA certificate to trust; None uses the SDK's bundled robot CA."
    )
    auth: AuthConfig = Field(default_factory=AuthConfig)
    client_name: str = Field("spot-cue-agent", description="Client name prefix shown on the robot.")
    connect_retries: int = Field(
        5, ge=1, description="Attempts to reach and authenticate with the robot before giving up."
    )
    connect_backoff_s: float = Field(
        1.0, gt=0, description="First wait between connection attempts; doubles each attempt."
    )
    time_sync_timeout_s: float = Field(
        5.0, gt=0, description="How long to wait for clock synchronisation with the robot."
    )
    rpc_timeout_s: float = Field(2.0, gt=0, description="Timeout of one command or state RPC.")
    lease_retain_interval_s: float = Field(
        0.5,
        gt=0,
        description="Lease keep-alive period. Short, so a lease taken by the tablet is noticed "
        "even while no command is being sent.",
    )
    register_estop: bool = Field(
        False,
        description="Register the agent's own E-Stop endpoint (replaces the robot's E-Stop "
        "configuration: only for benches and the sim). Otherwise an operator's E-Stop must "
        "already be configured and released.",
    )
    estop_timeout_s: float = Field(
        9.0, gt=0, description="Timeout of the agent's own E-Stop endpoint, if registered."
    )
    power_on_and_stand: bool = Field(
        True, description="Power the motors on and stand up at start (requires the lease)."
    )
    sit_on_exit: bool = Field(False, description="Sit down when the agent stops normally.")
    on_motors_off: Literal["exit", "power_on"] = Field(
        "exit",
        description="What the agent does when the motors it had on are found off (the robot "
        "powered itself off after losing contact for longer than its comms-loss timeout, it "
        "restarted, or an E-Stop cut power and was released): 'exit' ends the run with exit "
        "code 4 and the reason; 'power_on' powers on and stands again by itself (behaviors stay "
        "halted until a rule fires again). Only 'power_on' lets the agent power a robot on "
        "mid-run.",
    )

    @field_validator("ca_cert")
    @classmethod
    def _resolve_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _relative_to_config(value, info)


class CameraConfig(_Strict):
    """Which cameras to stream and how to ask for their images."""

    sources: list[str] = Field(
        default_factory=lambda: list(FRONT_CAMERAS),
        min_length=1,
        description="Image source names to stream, one stream task each.",
    )
    jpeg_quality: int = Field(75, ge=1, le=100, description="JPEG quality asked of the robot.")
    request_timeout_s: float = Field(
        0.5, gt=0, description="Timeout of one GetImage call (the SDK's viewer uses 0.5 s)."
    )
    depth: bool = Field(
        True,
        description="Also fetch each camera's registered depth (`<camera>_depth_in_visual_frame`) "
        "in the same GetImage call, so perception places detections in 3D from depth instead of "
        "guessing from where the box meets the floor.",
    )
    depth_resize_ratio: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Resize ratio asked for the depth image (480x640 U16 is 600 kB a frame; a "
        "quarter size is plenty for a median over a box). Falls back to full size if refused.",
    )
    frame_rate_hz: float = Field(
        15.0,
        gt=0,
        le=100,
        description="The cameras' image rate (Spot's body cameras: about 15 Hz). The agent asks "
        "for the next image one period after the last one was taken.",
    )
    max_poll_hz: float = Field(
        60.0,
        gt=0,
        le=200,
        description="At most this many GetImage calls per second per camera: the retry rate "
        "while the next image is late. The robot answers with its newest image; answers "
        "carrying an image already received are dropped.",
    )

    @field_validator("sources")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("camera sources must be unique")
        return value


class SafetyConfig(_Strict):
    """Bounds that keep the robot from acting on old information or moving unsupervised."""

    max_frame_age_s: float = Field(
        0.5, gt=0, description="Frames older than this (robot capture to detection) are dropped."
    )
    watchdog_s: float = Field(
        1.0,
        gt=0,
        description="No fresh detection result for this long stops the robot and halts behaviors.",
    )
    watchdog_startup_grace_s: float = Field(
        3.0,
        ge=0,
        description="Extra time the watchdog allows for the first detection after start "
        "(streams connecting); nothing can fire a rule before that first detection anyway.",
    )
    tick_hz: float = Field(10.0, gt=0, le=100, description="Rate of the behavior control loop.")
    detect_workers: int = Field(
        2, ge=1, le=16, description="Detector threads (each with its own interpreter)."
    )
    max_speed_mps: float = Field(
        1.0, gt=0, le=2.0, description="Cap on commanded linear speed (Spot walks up to 1.6 m/s)."
    )
    max_yaw_rate_rps: float = Field(1.0, gt=0, le=2.0, description="Cap on commanded turn rate.")
    max_goto_distance_m: float = Field(
        5.0, gt=0, description="Goals farther than this from the robot are refused."
    )
    max_command_duration_s: float = Field(
        10.0, gt=0, description="Cap on any command's deadline (velocity deadman, go-to timeout)."
    )
    stop_within_s: float = Field(
        1.0,
        gt=0,
        le=1.0,
        description="The deadman promise: if the agent dies or goes quiet, the body is still "
        "within this long of its last command. Every motion command's deadline is derived from "
        "it, minus the braking time at the command's speed (behaviors/deadman.py).",
    )
    braking_decel_mps2: float = Field(
        2.0,
        gt=0,
        le=10.0,
        description="How hard the robot brakes when a command's deadline passes, m/s^2 (the "
        "sim's Spot brakes at 2.0). Only a measured value on the robot may raise it.",
    )
    braking_decel_rps2: float = Field(
        3.0, gt=0, le=20.0, description="The same for turning, rad/s^2 (the sim: 3.0)."
    )
    stop_reaction_s: float = Field(
        0.1,
        ge=0,
        lt=1.0,
        description="Time the robot takes to act on a passed deadline: its control step plus "
        "the clock-sync error of the deadline.",
    )
    reconnect_backoff_s: float = Field(
        0.5, gt=0, description="First wait before reconnecting after the robot became unreachable."
    )
    reconnect_backoff_max_s: float = Field(
        8.0, gt=0, description="Longest wait between reconnection attempts."
    )

    @model_validator(mode="after")
    def _backoff_bounds_ordered(self) -> SafetyConfig:
        if self.reconnect_backoff_max_s < self.reconnect_backoff_s:
            raise ValueError("reconnect_backoff_max_s must be >= reconnect_backoff_s")
        return self

    @model_validator(mode="after")
    def _caps_keep_the_stop_promise(self) -> SafetyConfig:
        problem = self.stop_budget().shortfall(
            self.max_speed_mps, self.max_yaw_rate_rps, 1.0 / self.tick_hz
        )
        if problem is not None:
            raise ValueError(
                f"max_speed_mps/max_yaw_rate_rps cannot keep the stop promise: {problem}; lower "
                "them (or raise tick_hz)"
            )
        return self

    def stop_budget(self) -> StopBudget:
        """The promise and the robot's braking, as the deadline derivation takes them."""
        return StopBudget(
            stop_within_s=self.stop_within_s,
            linear_decel_mps2=self.braking_decel_mps2,
            angular_decel_rps2=self.braking_decel_rps2,
            reaction_s=self.stop_reaction_s,
        )


class AgentConfig(_Strict):
    """Everything `spot-agent run` needs."""

    robot: RobotConfig = Field(default_factory=RobotConfig)
    cameras: CameraConfig = Field(default_factory=CameraConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    rules: ConfigPath = Field(
        Path("rules/default.yaml"), description="Cue rules file (relative to this config file)."
    )
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    control: ControlConfig = Field(
        default_factory=ControlConfig,
        description="Operator control socket and live view (agent/control/config.py); off by default.",
    )
    recording: RecordingConfig = Field(
        default_factory=RecordingConfig,
        description="Segment size and age, and the disk a `--record` recording may use "
        "(agent/recording/segments.py).",
    )

    @field_validator("rules")
    @classmethod
    def _resolve_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _relative_to_config(value, info)

    @field_validator("detector")
    @classmethod
    def _resolve_detector_paths(cls, value: DetectorConfig, info: ValidationInfo) -> DetectorConfig:
        updates = {
            key: _relative_to_config(getattr(value, key), info)
            for key in ("model", "labels")
            if getattr(value, key) is not None
        }
        return value.model_copy(update=updates) if updates else value


def load_agent_config(path: Path | str) -> AgentConfig:
    """Read and validate an agent config file; raises `ConfigError` naming file and field."""
    return load_yaml_model(path, AgentConfig)


def config_overrides(config: AgentConfig, **changes: Any) -> AgentConfig:
    """A copy of `config` with dotted-path changes (`robot.port=...`), validated again."""
    data = config.model_dump()
    for dotted, value in changes.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return AgentConfig.model_validate(data)
