"""Tasks on a Ray cluster: one Ray task per recording, results streamed back as they finish.

Ray is an optional extra (`pip install 'spot-cue-agent[cluster]'`). Every node must have the
same spot-cue-agent installed, and see the inputs at the same paths (shared storage): a task
carries a path, not the footage. A task whose worker or node is lost is run again by Ray
(`MAX_RETRIES`); one that fails for good is reported, the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from agent.fleet.executor import TaskFailed

T = TypeVar("T")
R = TypeVar("R")

MAX_RETRIES = 3  # tries after a lost worker or node (Ray's own retry, for system failures only)
INSTALL_HINT = "pip install 'spot-cue-agent[cluster]'"


class RayMissing(RuntimeError):
    """--ray without Ray installed."""


class RayUnavailable(RayMissing):
    """--ray names a cluster this machine cannot connect to."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayMissing(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


class RayExecutor:
    """Connects to the cluster at `address` (`auto`: the one `ray start` runs on this machine;
    `ray://host:10001`: a remote head; `local`: a new single-machine Ray). If Ray is already
    initialised in this process (tests, notebooks), that connection is used and left open."""

    def __init__(self, address: str) -> None:
        self._ray = _ray()
        self._owned = not self._ray.is_initialized()
        if self._owned:
            # "local" always starts a new instance (None would join whatever cluster this machine
            # last started, even a stopped one); "auto" joins the running one.
            kwargs: dict[str, Any] = {"address": address, "log_to_driver": False,
                                      "logging_level": logging.ERROR}
            if address == "local":
                kwargs["include_dashboard"] = False
            try:
                self._ray.init(**kwargs)
            except Exception as exc:  # no cluster there, refused, timed out, a version mismatch
                raise RayUnavailable(f"--ray {address}: cannot connect to the Ray cluster: "
                                     f"{_first_line(exc)}") from None
        self.description = f"ray {address}"
        self.slots = max(1, int(self._ray.cluster_resources().get("CPU", 1)))
        self._pending: dict[Any, int] = {}

    def run(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[int, R | TaskFailed]]:
        ray = self._ray
        remote = ray.remote(fn).options(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)
        self._pending = {remote.remote(task): index for index, task in enumerate(tasks)}
        while self._pending:
            done, _ = ray.wait(list(self._pending), num_returns=1)
            for ref in done:
                index = self._pending.pop(ref)
                try:
                    yield index, ray.get(ref)
                except ray.exceptions.RayTaskError:
                    raise  # the task's own exception (an instance of its class too), as a pool raises it
                except ray.exceptions.RayError as exc:  # its worker or node lost on every try
                    yield index, TaskFailed(f"the cluster could not run it: {_first_line(exc)}")

    def stop(self) -> None:
        for ref in list(self._pending):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # already finished, or the connection is gone: nothing to end
                pass
        self._pending.clear()

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
