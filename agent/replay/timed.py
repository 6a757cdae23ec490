"""Frame-by-frame replay (videos, image folders, `--mode frames`): time is the frames' own.

The pipeline runs with one detect worker: it asks for the next frame only once the previous one
is detected, observed and reacted to, and nothing moves the clock while it works. So the source
decides, between two frames, what time it is and which control ticks run: before each frame the
`FrameClock` is advanced to the frame's capture time, running every control tick due on the way
at its exact tick time (`tick_hz` on recorded time). However fast the machine, the same input
gives the same commands at the same times.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from agent.core.clock import FrameClock
from agent.replay.reading import FrameStream, ReadReport, ReplayInputError
from agent.replay.timing import Pacer
from perception.frame import Frame


class TimedFrameSource:
    """Frames of any replay source in order, with time following their capture times.

    Before each frame the `FrameClock` advances to the frame's time, which runs every control
    tick due before it at its exact tick time. Frames whose time goes backwards (a second
    camera slightly behind) are passed at the current time: time never runs backwards.
    """

    def __init__(self, inner: FrameStream, clock: FrameClock, pacer: Pacer | None = None) -> None:
        self.inner = inner
        self.cameras = list(inner.cameras)
        self.one_at_a_time = True  # replay decides the time between frames
        self.report: ReadReport = inner.report
        self.clock = clock
        self.pacer = pacer or Pacer(None)

    async def frames(self) -> AsyncIterator[Frame]:
        async for frame in self.inner.frames():
            await self.pacer.wait_for(frame.acquisition_time_local)
            await self.clock.advance_to(frame.acquisition_time_local)
            yield frame
        self.cameras = list(self.inner.cameras)

    async def start(self) -> None:
        pass  # the input was opened when the replay began

    def stats(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        await self.inner.close()


async def start_timed(inner: FrameStream, pacer: Pacer | None = None) -> TimedFrameSource:
    """`inner` timed by a `FrameClock` that starts at its first frame's time (read now).

    Raises `ReplayInputError` when `inner` has no readable frame at all."""
    rest = inner.frames().__aiter__()
    try:
        first = await rest.__anext__()
    except StopAsyncIteration:
        raise ReplayInputError(inner.report.nothing_readable()) from None
    clock = FrameClock(start=first.acquisition_time_local)
    return TimedFrameSource(_Prepended(inner, first, rest), clock, pacer)


class _Prepended:
    """A replay source whose first frame was already read (to start the clock at its time)."""

    def __init__(self, inner: FrameStream, first: Frame, rest: AsyncIterator[Frame]) -> None:
        self.inner, self.first, self.rest = inner, first, rest
        self.report = inner.report

    @property
    def cameras(self) -> list[str]:
        return list(self.inner.cameras)

    async def frames(self) -> AsyncIterator[Frame]:
        yield self.first
        async for frame in self.rest:
            yield frame

    async def close(self) -> None:
        await self.inner.close()
