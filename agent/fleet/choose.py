"""The executor the command line asks for (`--workers`, `--ray`)."""

from __future__ import annotations

import logging
from typing import Any

from agent.fleet.executor import InProcessExecutor, PoolExecutor


def make_executor(workers: int, ray_address: str | None, log_level: int = logging.ERROR) -> Any:
    """The executor the options ask for: Ray at `ray_address`, else `workers` processes (1: in
    this process). Raises `agent.fleet.ray_executor.RayMissing` when Ray is not installed."""
    if ray_address is not None:
        from agent.fleet.ray_executor import RayExecutor

        return RayExecutor(ray_address)
    return InProcessExecutor() if workers <= 1 else PoolExecutor(workers, log_level)
