"""`replay --out-video`: each replayed frame with the boxes of what was detected in it, as a video.

Kept as an observer of the replayed pipeline, so it draws exactly the results the engine
observed, on the frames they came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.core.observers import PipelineObserver


class AnnotatedVideoWriter(PipelineObserver):
    """Writes each processed frame with its boxes to a video (`per_camera`: one file each)."""

    def __init__(self, path: Path, fps: float, per_camera: bool = False) -> None:
        self.path = path
        self.fps = fps
        self.per_camera = per_camera
        self._frames: dict[tuple[str, int], Any] = {}
        self._writers: dict[str, Any] = {}
        self.paths: list[Path] = []

    def _writer_for(self, camera: str, size: tuple[int, int], multi: bool) -> Any:
        import cv2

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

    def frame_taken(self, frame: Any) -> None:
        if not frame.is_depth:
            self._frames[(frame.camera, frame.seq)] = frame

    def result_observed(self, now: float, result: Any) -> None:
        import cv2
        import numpy as np

        frame = self._frames.pop((result.camera, result.seq), None)
        for key in [k for k in self._frames if k[0] == result.camera and k[1] < result.seq]:
            del self._frames[key]  # taken but never observed (stale)
        if frame is None:
            return
        image = frame.image
        canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
        scale = frame.image_scale
        for s in result.sightings:
            x1, y1, x2, y2 = (int(round(v * scale)) for v in s.box)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 0, 255), 2)
            cv2.putText(canvas, f"{s.label} {s.score:.2f}", (x1, max(12, y1 - 4)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 1, cv2.LINE_AA)
        height, width = canvas.shape[:2]
        writer = self._writer_for(result.camera, (width, height), multi=self.per_camera)
        writer.write(np.ascontiguousarray(canvas))

    def close(self) -> None:
        for writer in self._writers.values():
            writer.release()
        self._writers.clear()
