"""`build_pipeline`: the one place a pipeline is put together, for every way of running it.

`spot-agent run` and `demo` (Spot's cameras and a `SpotRobot`), `spot-agent replay` (a replay
source and a dry-run robot) and the benchmarks all call it with their own seams; what decides
(rules, engine, stop promise), what perceives (the detector config) and what bounds it (the
safety settings) always come from the config the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from agent.core.clock import Clock
from agent.core.config import SafetyConfig
from agent.core.events import EventLog
from agent.core.observers import PipelineObserver
from agent.core.pipeline import Pipeline
from agent.core.seams import FrameSource, PerceiveFrame, PerceiverFactory, Robot
from behaviors.config import RulesConfig, load_rules
from behaviors.engine import CueEngine
from perception.config import DetectorConfig


class PipelineSettings(Protocol):
    """What the pipeline takes from the agent's config (`agent.config.AgentConfig`)."""

    @property
    def rules(self) -> Path: ...

    @property
    def detector(self) -> DetectorConfig: ...

    @property
    def safety(self) -> SafetyConfig: ...


def detector_threads(detector: DetectorConfig, sdk_robot: Any = None) -> PerceiverFactory:
    """One `Perceiver` per detector thread (each its own interpreter), from the config.
    `sdk_robot`: the robot whose NetworkComputeBridge reaches a remote detector's worker."""
    from perception.network_compute import bridge_call
    from perception.perceiver import Perceiver

    remote = detector.type == "network_compute_bridge" and detector.network_compute_bridge.address is None

    def make() -> PerceiveFrame:
        bridge = bridge_call(sdk_robot) if remote and sdk_robot is not None else None
        return Perceiver.from_config(detector, bridge).process

    return make


def build_pipeline(
    config: PipelineSettings,
    source: FrameSource,
    robot: Robot,
    clock: Clock | None = None,
    *,
    rules: RulesConfig | None = None,
    perceiver_factory: PerceiverFactory | None = None,
    observers: Sequence[PipelineObserver] = (),
    events: EventLog | None = None,
    sdk_robot: Any = None,
) -> Pipeline:
    """The pipeline for `config` on these seams.

    `rules`: already loaded (and checked against the cameras the run streams), else read from
    `config.rules`. `perceiver_factory`: how each detector thread perceives; by default the
    config's detector (replay passes one that detected ahead on every core).
    """
    rules = rules if rules is not None else load_rules(config.rules)
    engine = CueEngine(rules, stop=config.safety.stop_budget())
    return Pipeline(
        source,
        perceiver_factory or detector_threads(config.detector, sdk_robot),
        engine,
        robot,
        config.safety,
        clock=clock,
        events=events,
        observers=list(observers),
    )
