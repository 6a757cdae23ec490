"""What every replay input shares: the report of what it read and lost, and reading on a thread.

Every input reads what it can and reports what it could not (`ReadReport`: what was lost and
where: byte offset, message index, file name, frame number), and never raises for bad data
once opened. Opening raises `ReplayInputError` with a clear message when the input is not
usable at all (missing, not a recording/video/image folder).

Reading and decoding run on a helper thread a few frames ahead of the consumer
(`read_in_thread`), so JPEG decoding overlaps with detection instead of adding to it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from perception.frame import Frame


class ReplayInputError(ValueError):
    """The input cannot be replayed at all (missing, unsupported, nothing readable)."""


class NoFrames(ReplayInputError):
    """The input is intact but holds no frame (e.g. a recording's start-up segment)."""


@dataclass(frozen=True)
class ReadProblem:
    where: str  # "byte 1234", "message 17 on /camera/x/compressed", "img_003.jpg", "frame 120"
    what: str


@dataclass
class ReadReport:
    """What a source read and what it lost."""

    source: str
    kind: str  # "mcap", "video", "images"
    frames: int = 0
    problems: list[ReadProblem] = field(default_factory=list)
    complete: bool = True  # False when the input ended early or parts were unreadable

    def lost(self, where: str, what: str) -> None:
        self.problems.append(ReadProblem(where, what))
        self.complete = False

    def note(self, where: str, what: str) -> None:
        """A problem that loses nothing (e.g. an assumption made)."""
        self.problems.append(ReadProblem(where, what))

    @property
    def readable(self) -> bool:
        return self.frames > 0

    def nothing_readable(self) -> str:
        """The error for an input without a single readable frame, with its first problems."""
        detail = "; ".join(f"{p.where}: {p.what}" for p in self.problems[:5])
        return f"{self.source}: nothing readable" + (f" ({detail})" if detail else "")


class FrameStream(Protocol):
    """What replay needs of an input: its cameras, its frames in order, what was lost, close."""

    report: ReadReport

    @property
    def cameras(self) -> list[str]: ...

    def frames(self) -> AsyncIterator[Frame]: ...

    async def close(self) -> None: ...


class _End:
    pass


@dataclass(frozen=True)
class _Failed:
    error: BaseException


T = TypeVar("T")


async def read_in_thread(
    make_items: Callable[[], Iterator[T]],
    depth: int,
    stop: threading.Event,
    on_read: Callable[[T], None] | None = None,
    name: str = "replay-reader",
    report: ReadReport | None = None,
) -> AsyncIterator[T]:
    """Iterate a blocking iterator on a helper thread, at most `depth` items ahead.

    `on_read` runs on the helper thread for each item as it is read (e.g. to start detecting a
    frame before the pipeline asks for it). Setting `stop` ends the reading. With a `report`,
    an error the reader did not expect ends the input and is reported as a loss there instead
    of being raised into the consumer (a pipeline whose source raises would wait forever).
    """
    loop = asyncio.get_running_loop()
    ready: asyncio.Queue[Any] = asyncio.Queue()
    space = threading.Semaphore(max(1, depth))

    def hand_over(item: Any) -> None:
        try:
            loop.call_soon_threadsafe(ready.put_nowait, item)
        except RuntimeError:  # the loop is gone: nobody is listening any more
            stop.set()

    def produce() -> None:
        try:
            for item in make_items():
                while not space.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                if on_read is not None:
                    on_read(item)
                hand_over(item)
        except Exception as exc:
            if report is None:
                hand_over(_Failed(exc))  # reported to the consumer, not lost in a thread
            else:
                report.lost("input", f"reading stopped: {type(exc).__name__}: {exc}")
        except BaseException as exc:
            hand_over(_Failed(exc))
        finally:
            hand_over(_End())

    threading.Thread(target=produce, name=name, daemon=True).start()
    try:
        while True:
            item = await ready.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failed):
                raise item.error
            space.release()
            yield item
    finally:
        stop.set()


class PrefetchingSource:
    """A `FrameStream` over a blocking frame iterator run on a helper thread, `prefetch` ahead.

    Subclasses set `cameras` and `report` and yield frames from `_iter_frames` (checking
    `_stop` between frames). `on_read`, if set, sees each frame on the helper thread as soon as
    it is read. A `FrameSource` too: frames come in recorded order, one at a time (replay runs
    wrap it to drive time: agent/replay/timed.py, recorded_run.py).
    """

    cameras: list[str]
    report: ReadReport
    one_at_a_time = True

    async def start(self) -> None:
        pass  # opened when constructed

    def stats(self) -> dict[str, Any]:
        return {}

    def __init__(self, prefetch: int = 4) -> None:
        self._prefetch = max(1, prefetch)
        self._stop = threading.Event()
        self.on_read: Callable[[Frame], None] | None = None

    def _iter_frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def frames(self) -> AsyncIterator[Frame]:
        return read_in_thread(
            self._iter_frames, self._prefetch, self._stop, self.on_read,
            name=f"replay-{self.report.kind}", report=self.report,
        )

    async def close(self) -> None:
        self._stop.set()
