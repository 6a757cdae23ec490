"""Per-camera "latest frame wins" slots: how a live source keeps no backlog.

Each camera's stream task `put`s what it receives into its camera's slot, overwriting a frame
nobody took yet (counted as skipped). The consumer `take`s only when it has a free detector, so
it always gets the newest frame there is, and a slow detector makes frames skipped, never
queued. Among cameras with a waiting frame, the one that has waited longest goes first, so one
fast camera cannot starve the others.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class SlotStats:
    received: int = 0
    taken: int = 0
    skipped: int = 0  # overwritten before anyone took them


class LatestSlots(Generic[T]):
    """One slot per camera holding the newest untaken item (a frame or an image response)."""

    def __init__(self, cameras: list[str]) -> None:
        self._items: dict[str, T] = {}
        self._waiting_since: dict[str, int] = {}
        self._arrivals = 0
        self._changed = asyncio.Event()
        self._closed = False
        self.stats: dict[str, SlotStats] = {camera: SlotStats() for camera in cameras}

    def put(self, camera: str, item: T) -> None:
        stats = self.stats.setdefault(camera, SlotStats())
        stats.received += 1
        if camera in self._items:
            stats.skipped += 1
        else:
            self._arrivals += 1
            self._waiting_since[camera] = self._arrivals
        self._items[camera] = item
        self._changed.set()

    def pending(self) -> int:
        return len(self._items)

    def close(self) -> None:
        self._closed = True
        self._changed.set()

    async def take(self) -> tuple[str, T] | None:
        """The newest item of the camera that has waited longest; None once closed and empty."""
        while not self._items:
            if self._closed:
                return None
            self._changed.clear()
            await self._changed.wait()
        camera = min(self._items, key=self._waiting_since.__getitem__)
        item = self._items.pop(camera)
        del self._waiting_since[camera]
        self.stats[camera].taken += 1
        return camera, item
