"""`DetectorThreads`: detection off the event loop, one perceiver (one interpreter) per thread.

TFLite interpreters are not thread-safe, so each worker thread builds its own perceiver from the
factory the first time it runs, and a first inference on a blank frame (warm-up) prepares every
interpreter's kernels before real frames arrive, so the first frames are not slow ones.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import numpy as np

from agent.core.seams import PerceiveFrame, PerceiverFactory
from perception.detection import FrameResult
from perception.frame import Frame


class DetectorThreads:
    """`workers` threads, each with its own perceiver from `factory`."""

    def __init__(self, factory: PerceiverFactory, workers: int) -> None:
        self.factory = factory
        self.workers = workers
        self._local = threading.local()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="detect"
        )

    def _perceiver(self) -> PerceiveFrame:
        perceive: PerceiveFrame | None = getattr(self._local, "perceive", None)
        if perceive is None:
            perceive = self._local.perceive = self.factory()
        return perceive

    def _warm_thread(self, barrier: threading.Barrier) -> None:
        if getattr(self._local, "perceive", None) is None:
            self._perceiver()(Frame("warm-up", np.zeros((480, 640), np.uint8), 0.0, 0.0))
        # Hold this thread until every worker has started, so each gets its own perceiver.
        barrier.wait(timeout=60)

    async def warm_up(self) -> None:
        """Build and warm every thread's perceiver (the model loads now, not on a real frame)."""
        barrier = threading.Barrier(self.workers)
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(loop.run_in_executor(self._pool, self._warm_thread, barrier) for _ in range(self.workers))
        )

    async def perceive(self, frame: Frame) -> FrameResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: self._perceiver()(frame))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
