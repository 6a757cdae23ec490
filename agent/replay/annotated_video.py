"""`replay --out-video`: each replayed frame with the boxes of what was detected in it, as a video.

Kept as an observer of the replayed pipeline, so it draws exactly the results the engine
observed, on the frames they came from, with perception's one box drawer (`perception.annotate`).
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from agent.core.observers import PipelineObserver
from perception.annotate import annotate
from perception.detection import Detection, FrameResult, Sighting
from perception.frame import Frame


class AnnotatedVideoWriter(PipelineObserver):
    """Writes each processed frame with its boxes to a video (`per_camera`: one file each)."""

    def __init__(self, path: Path, fps: float, per_camera: bool = False) -> None:
        self.path = path
        self.fps = fps
        self.per_camera = per_camera
        self._frames: dict[tuple[str, int], Frame] = {}
        self._writers: dict[str, Any] = {}
        self.paths: list[Path] = []

    def _writer_for(self, camera: str, size: tuple[int, int], multi: bool) -> Any:
        writer = self._writers.get(camera)
        if writer is None:
            # One camera: the path asked for; more: one file per camera (a camera that shows up
            # late in a recording without a summary gets its own file too).
            plain = not multi and not self._writers
            path = self.path if plain else self.path.with_name(
                f"{self.path.stem}_{camera}{self.path.suffix}"
            )
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
            if not writer.isOpened():
                raise OSError(f"{path}: cannot write a video there")
            self._writers[camera] = writer
            self.paths.append(path)
        return writer

    def frame_taken(self, frame: Frame) -> None:
        if not frame.is_depth:
            self._frames[(frame.camera, frame.seq)] = frame

    def result_observed(self, now: float, result: FrameResult) -> None:
        frame = self._frames.pop((result.camera, result.seq), None)
        for key in [k for k in self._frames if k[0] == result.camera and k[1] < result.seq]:
            del self._frames[key]  # taken but never observed (stale)
        if frame is None:
            return
        canvas = annotate(frame.image, [_on_image(s, frame.image_scale) for s in result.sightings])
        height, width = canvas.shape[:2]
        writer = self._writer_for(result.camera, (width, height), multi=self.per_camera)
        writer.write(np.ascontiguousarray(canvas))

    def close(self) -> None:
        for writer in self._writers.values():
            writer.release()
        self._writers.clear()


def _on_image(sighting: Sighting, image_scale: float) -> Detection:
    """A sighting as perception's box drawer takes it: in the pixels of the (maybe reduced)
    image, coloured by its label (sightings carry labels, not class ids)."""
    x1, y1, x2, y2 = (v * image_scale for v in sighting.box)
    colour_key = zlib.crc32(sighting.label.encode())
    keypoints = None
    if sighting.keypoints is not None:
        keypoints = tuple((x * image_scale, y * image_scale, k) for x, y, k in sighting.keypoints)
    return Detection(sighting.label, colour_key, sighting.score, (x1, y1, x2, y2), keypoints=keypoints)
