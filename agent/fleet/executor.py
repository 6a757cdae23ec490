"""Where a batch's tasks run: in this process, in a pool of worker processes, or on a Ray
cluster (`agent.fleet.ray_executor`), all behind one protocol.

A task is a top-level function and a picklable argument; it returns plain data. Results come
back as they finish, with the task's index, so the caller can order them: what a task returns
never depends on where or when it ran. A task function catches its own input's errors and
returns them as data; an executor reports what the task could not: its worker died
(`TaskFailed`).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# A worker process that died takes the tasks it was running with it; each such task is tried
# again, alone, this many times in a fresh pool (the crash may have been another task's).
POOL_RETRIES = 1


@dataclass(frozen=True)
class TaskFailed:
    """A task that could not run to its end: its worker died, or the cluster gave up on it."""

    message: str


class Executor(Protocol):
    """Runs tasks somewhere and yields (index, result or TaskFailed) as each finishes."""

    description: str  # for the timings section: "in-process", "2 worker processes", "ray auto"
    slots: int  # tasks that run at once

    def run(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[int, R | TaskFailed]]: ...

    def stop(self) -> None:
        """Ctrl-C: drop what is queued and end the workers now."""

    def close(self) -> None: ...


class InProcessExecutor:
    """One task after the other in this process (`--workers 1`: what replay always did)."""

    description = "in-process"
    slots = 1

    def run(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[int, R | TaskFailed]]:
        for index, task in enumerate(tasks):
            yield index, fn(task)

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


def _init_pool_worker(log_level: int) -> None:
    # Ctrl-C reaches the whole process group: the parent alone handles it and ends the workers,
    # so a worker never dies half-way with a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level)
    logging.getLogger().setLevel(log_level)


class PoolExecutor:
    """A pool of worker processes on this machine (spawned: the parent runs threads, e.g. the
    progress bar's, and forking a threaded process is unsafe)."""

    def __init__(self, workers: int, log_level: int = logging.ERROR) -> None:
        self.slots = workers
        self.description = f"{workers} worker processes"
        self._log_level = log_level
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.slots, context, _init_pool_worker, (self._log_level,))

    def run(self, fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[int, R | TaskFailed]]:
        broken: list[int] = []
        yield from self._round(fn, tasks, list(range(len(tasks))), broken)
        # A dead worker breaks the whole pool, failing every task in flight, not only its own.
        # Each of those runs again alone in a fresh pool: a task that kills its worker every
        # time is then told apart from the ones it took down with it.
        for index in broken:
            for attempt in range(POOL_RETRIES + 1):
                again: list[int] = []
                yield from self._round(fn, tasks, [index], again)
                if not again:
                    break
                if attempt == POOL_RETRIES:
                    yield index, TaskFailed("its worker process died (out of memory, or a crash in "
                                            "a native library) on every try")

    def _round(self, fn: Callable[[T], R], tasks: Sequence[T], indices: list[int],
               broken: list[int]) -> Iterator[tuple[int, R]]:
        """Runs `indices`; those whose worker died go to `broken` (the pool is then renewed)."""
        futures: dict[Future[R], int] = {self._pool.submit(fn, tasks[i]): i for i in indices}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except BrokenProcessPool:
                broken.append(futures[future])
        if broken:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()

    def stop(self) -> None:
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # the executor has no public way to end running tasks
            process.terminate()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
