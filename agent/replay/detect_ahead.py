"""`DetectAhead`: detection runs ahead of the replayed pipeline, on every core.

Replay takes frames one at a time and in order (that is what makes it deterministic), so run
as-is it would be as slow as detector + decode + engine in series. A result depends only on its
frame, so computing it earlier, on another thread, changes nothing but the wall time: the reader
thread submits each frame as it reads it, and the pipeline's perceive picks the result up.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

from perception.frame import Frame

FrameKey = tuple[str, int, float]


def frame_key(frame: Frame) -> FrameKey:
    return (frame.camera, frame.seq, frame.acquisition_time_local)


class DetectAhead:
    """Detects frames on `workers` threads as soon as the reader has them, ahead of the pipeline.

    The pipeline still takes frames one at a time and in order (that is what makes replay
    deterministic); only the detector's work moves earlier, so a replay runs as fast as the
    detector, not detector + decode + engine in series. A result depends only on its frame, so
    computing it earlier or on another thread changes nothing. Each worker thread has its own
    perceiver (interpreters are not thread-safe).
    """

    def __init__(self, make_perceiver: Callable[[], Callable[[Frame], Any]], workers: int) -> None:
        self._make = make_perceiver
        self._local = threading.local()
        self.workers = max(1, workers)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="detect-ahead"
        )
        self._futures: dict[FrameKey, concurrent.futures.Future[Any]] = {}
        self._lock = threading.Lock()
        self.ahead_hits = 0

    def _perceive(self, frame: Frame) -> Any:
        perceive = getattr(self._local, "perceive", None)
        if perceive is None:
            perceive = self._local.perceive = self._make()
        return perceive(frame)

    def submit(self, frame: Frame) -> None:
        """Start detecting `frame` (called by the reader thread as it reads frames)."""
        if frame.is_depth:
            return
        with self._lock:
            self._futures[frame_key(frame)] = self._pool.submit(self._perceive, frame)

    def forget(self, frame: Frame) -> None:
        """`frame` will never be asked for (a frame the live run did not observe)."""
        with self._lock:
            future = self._futures.pop(frame_key(frame), None)
        if future is not None:
            future.cancel()

    def warm(self) -> None:
        """Load one perceiver per worker thread now, before any frame is timed."""
        workers = self.workers
        barrier = threading.Barrier(workers)

        def load() -> None:
            if getattr(self._local, "perceive", None) is None:
                self._local.perceive = self._make()
            barrier.wait(timeout=60)  # hold the thread so each worker loads its own

        for future in [self._pool.submit(load) for _ in range(workers)]:
            future.result()

    def perceive(self, frame: Frame) -> Any:
        """The pipeline's perceive: the result computed ahead, or computed now (on a worker,
        which already has its perceiver) if there is none."""
        with self._lock:
            future = self._futures.pop(frame_key(frame), None)
        if future is None or future.cancelled():
            future = self._pool.submit(self._perceive, frame)
        else:
            self.ahead_hits += 1
        return future.result()

    def perceiver_factory(self) -> Callable[[], Callable[[Frame], Any]]:
        return lambda: self.perceive

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
