"""`open_replay_source`: the right replay input for a path (a recording, a video, a folder).

The inputs themselves live beside it: `agent.replay.mcap` (MCAP recordings),
`agent.replay.files` (videos and image folders); what they share (the read report, reading on
a helper thread) is in `agent.replay.reading`.
"""

from __future__ import annotations

from pathlib import Path

from agent.recording.salvage import MCAP_MAGIC
from agent.replay.files import ImageFolderSource, VideoFrameSource
from agent.replay.images import ImageDecoder, decode_image
from agent.replay.mcap import McapFrameSource
from agent.replay.reading import PrefetchingSource, ReplayInputError


def open_replay_source(
    path: str | Path,
    *,
    fps: float | None = None,
    camera: str | None = None,
    decode: ImageDecoder = decode_image,
    prefetch: int = 4,
) -> PrefetchingSource:
    """The right source for `path`: a folder of images, an MCAP recording, or a video file.

    `prefetch`: frames read and decoded ahead of the consumer.
    """
    path = Path(path)
    if not path.exists():
        raise ReplayInputError(f"{path}: no such file or folder")
    if path.is_dir():
        return ImageFolderSource(
            path, camera=camera or "images", fps=fps or 10.0, decode=decode, prefetch=prefetch
        )
    if not path.is_file():  # a FIFO, socket or device: opening it could block forever
        raise ReplayInputError(f"{path}: not a regular file (a pipe or a device cannot be replayed)")
    with open(path, "rb") as f:
        head = f.read(8)
    if head == MCAP_MAGIC or path.suffix.lower() == ".mcap":
        return McapFrameSource(path, decode, prefetch=prefetch)
    return VideoFrameSource(path, camera=camera or "video", fps=fps, prefetch=prefetch)
