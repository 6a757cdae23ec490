"""A task whose worker process dies is run again (a pool: in a fresh pool; Ray: its own
`max_retries`), and one whose worker dies on every try is reported as failed while the other
tasks finish. The worker really dies (`os._exit`), as on an out-of-memory kill."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.fleet.executor import PoolExecutor, TaskFailed

pytestmark = pytest.mark.slow


def _dies_once_then_succeeds(marker: str) -> str:
    """The first call (per marker file) kills its own worker process; later calls succeed."""
    path = Path(marker)
    if marker.endswith("always") or not path.exists():
        path.write_text("died")
        os._exit(1)
    return f"ok {path.name}"


def _tasks(tmp_path: Path) -> list[str]:
    return [str(tmp_path / "a"), str(tmp_path / "always"), str(tmp_path / "b")]


def _check(results: dict[int, object]) -> None:
    assert results[0] == "ok a" and results[2] == "ok b"  # retried after its worker died
    assert isinstance(results[1], TaskFailed)  # died on every try: reported, the rest finished


def test_a_pool_reruns_a_task_whose_worker_died(tmp_path: Path) -> None:
    pool = PoolExecutor(2)
    try:
        results = dict(pool.run(_dies_once_then_succeeds, _tasks(tmp_path)))
    finally:
        pool.close()
    _check(results)
    assert "worker process died" in results[1].message  # type: ignore[attr-defined]


def test_ray_reruns_a_task_whose_worker_died(tmp_path: Path) -> None:
    import ray

    from agent.fleet.ray_executor import RayExecutor

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        executor = RayExecutor("auto")
        results = dict(executor.run(_dies_once_then_succeeds, _tasks(tmp_path)))
    finally:
        ray.shutdown()
    _check(results)
    assert "the cluster could not run it" in results[1].message  # type: ignore[attr-defined]
