"""All behaviors, registered by name: importing this module fills `REGISTRY`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from behaviors import basic, fiducial, motion, sequence  # noqa: F401  (registration)
from behaviors.deadman import StopBudget
from behaviors.limits import MotionLimits
from behaviors.memory import SightingMemory
from behaviors.registry import REGISTRY, Behavior, BehaviorCall, BehaviorContext, describe
from perception.detection import Sighting


def behavior_names() -> list[str]:
    return sorted(REGISTRY)


def behaviors_catalog() -> list[dict[str, Any]]:
    """Every behavior with its parameters (name, type, default, description), sorted by name."""
    return [describe(REGISTRY[name]) for name in behavior_names()]


def build_behavior(
    call: BehaviorCall,
    limits: MotionLimits,
    memory: SightingMemory,
    trigger: Sighting | None,
    emit: Callable[[str, float, dict[str, Any]], None],
    stop: StopBudget = StopBudget(),
) -> Behavior:
    """A behavior ready to step; raises ValueError when it cannot start in this context."""

    def create(sub: BehaviorCall) -> Behavior:
        return build_behavior(sub, limits, memory, trigger, emit, stop)

    ctx = BehaviorContext(
        limits=limits, memory=memory, trigger=trigger, emit=emit, create=create, stop=stop
    )
    return REGISTRY[call.behavior](call.validated_params, ctx)
