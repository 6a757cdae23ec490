"""The agent's settings (`configs/agent.yaml`, `configs/sim.yaml`, `configs/payload.yaml`).

One model composed of each layer's own section: `robot:` and `cameras:` (the Spot adapter,
agent/spot/config.py), `detector:` (perception/config.py), `safety:` (the pipeline,
agent/core/config.py), `control:` (agent/control/config.py), `recording:`
(agent/recording/segments.py), and the rules file. Unknown keys are errors, numbers are never
coerced, every field says what it is for, and relative paths are taken relative to the config
file (`configs.loading.ConfigPath`), so a config directory can be moved whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from agent.control.config import ControlConfig
from agent.core.config import SafetyConfig
from agent.recording.segments import RecordingConfig
from agent.spot.config import FRONT_CAMERAS, AuthConfig, CameraConfig, RobotConfig
from configs.loading import ConfigPath, StrictModel, load_yaml_model
from perception.config import DetectorConfig

__all__ = ["FRONT_CAMERAS", "AgentConfig", "AuthConfig", "CameraConfig", "RobotConfig",
           "SafetyConfig", "config_overrides", "load_agent_config"]


class AgentConfig(StrictModel):
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
