"""The `FrameSource` seam: where frames come from (Spot's cameras, the sim, a recording)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from perception.frame import Frame


@runtime_checkable
class FrameSource(Protocol):
    """An async stream of frames from one or more cameras.

    Live sources yield the newest frame per camera as it arrives; replay sources yield
    recorded frames in order. Frames that could not be decoded are counted by the source and
    never yielded.
    """

    cameras: list[str]

    def frames(self) -> AsyncIterator[Frame]: ...

    async def close(self) -> None: ...
