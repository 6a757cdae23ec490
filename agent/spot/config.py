"""Settings of the Spot adapter: which robot, how to log in and keep the session, which cameras.

Sections `robot:` and `cameras:` of the agent config (`agent/config.py` composes them). Relative
paths (CA certificate, payload credentials) are taken relative to the config file (`ConfigPath`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from configs.loading import ConfigPath, StrictModel

FRONT_CAMERAS = ["frontleft_fisheye_image", "frontright_fisheye_image"]


class AuthConfig(StrictModel):
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


class RobotConfig(StrictModel):
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


class CameraConfig(StrictModel):
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
