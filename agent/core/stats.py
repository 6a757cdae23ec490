"""What the pipeline measures: rates, drops, frame ages and latencies (Frigate-style stats).

Samples are kept in bounded windows so a long-running agent reports recent behaviour and
uses constant memory.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perception.detection import FrameResult

WINDOW = 5000


@dataclass
class Samples:
    """A bounded window of float samples with percentiles."""

    values: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))

    def add(self, value: float) -> None:
        self.values.append(value)

    def __len__(self) -> int:
        return len(self.values)

    def percentile(self, q: float) -> float | None:
        if not self.values:
            return None
        return float(np.percentile(np.fromiter(self.values, dtype=float), q))

    def summary(self, scale: float = 1.0) -> dict[str, float | int | None]:
        p50, p95 = self.percentile(50), self.percentile(95)
        return {
            "n": len(self.values),
            "p50": None if p50 is None else round(p50 * scale, 2),
            "p95": None if p95 is None else round(p95 * scale, 2),
        }


@dataclass
class CameraCounters:
    frames: int = 0  # frames the pipeline took from the source
    detected: int = 0  # frames the detector finished and the engine saw
    dropped_stale: int = 0  # too old to act on (before or after detection)


@dataclass
class SeenLabel:
    """How often perception reported a label, and how close it came (for the run summary)."""

    frames: int = 0
    closest_m: float | None = None

    def add(self, distance_m: float | None) -> None:
        self.frames += 1
        if distance_m is not None and (self.closest_m is None or distance_m < self.closest_m):
            self.closest_m = distance_m


@dataclass
class PipelineStats:
    started_at: float = 0.0
    finished_at: float | None = None
    cameras: dict[str, CameraCounters] = field(default_factory=dict)
    age_at_detection_s: Samples = field(default_factory=Samples)
    age_at_result_s: Samples = field(default_factory=Samples)
    detect_s: Samples = field(default_factory=Samples)
    age_at_command_s: Samples = field(default_factory=Samples)
    cue_to_command_s: Samples = field(default_factory=Samples)
    capture_to_command_s: Samples = field(default_factory=Samples)
    commands_sent: int = 0
    commands_refused: int = 0
    ticks: int = 0
    watchdog_trips: int = 0
    detector_unavailable: int = 0  # frames a remote detector gave nothing for (down, slow)
    seen: dict[str, SeenLabel] = field(default_factory=dict)

    def saw(self, label: str, distance_m: float | None) -> None:
        self.seen.setdefault(label, SeenLabel()).add(distance_m)

    def result_ready(self, result: FrameResult, age_s: float) -> None:
        """A detection result is ready, `age_s` after its frame was captured."""
        self.age_at_result_s.add(age_s)
        self.detect_s.add(result.detect_ms / 1000.0)
        self.camera(result.camera).detected += 1
        for label in {s.label for s in result.sightings}:
            near = [s.distance_m for s in result.sightings
                    if s.label == label and s.distance_m is not None]
            self.saw(label, min(near) if near else None)

    def camera(self, name: str) -> CameraCounters:
        return self.cameras.setdefault(name, CameraCounters())

    @property
    def detected(self) -> int:
        return sum(c.detected for c in self.cameras.values())

    @property
    def dropped_stale(self) -> int:
        return sum(c.dropped_stale for c in self.cameras.values())

    def elapsed(self, now: float) -> float:
        end = self.finished_at if self.finished_at is not None else now
        return max(end - self.started_at, 1e-9)

    def as_dict(self, now: float, source_stats: dict[str, Any] | None = None) -> dict[str, Any]:
        elapsed = self.elapsed(now)
        per_camera = {}
        for name, c in sorted(self.cameras.items()):
            per_camera[name] = {
                "frames": c.frames,
                "detected": c.detected,
                "dropped_stale": c.dropped_stale,
                "detect_fps": round(c.detected / elapsed, 2),
            }
            if source_stats and name in source_stats:
                per_camera[name].update(source_stats[name])
        return {
            "elapsed_s": round(elapsed, 2),
            "detect_fps": round(self.detected / elapsed, 2),
            "detected": self.detected,
            "dropped_stale": self.dropped_stale,
            "commands_sent": self.commands_sent,
            "commands_refused": self.commands_refused,
            "watchdog_trips": self.watchdog_trips,
            "detector_unavailable": self.detector_unavailable,
            "age_at_detection_ms": self.age_at_detection_s.summary(1000.0),
            "age_at_result_ms": self.age_at_result_s.summary(1000.0),
            "detect_ms": self.detect_s.summary(1000.0),
            "age_at_command_ms": self.age_at_command_s.summary(1000.0),
            "cue_to_command_ms": self.cue_to_command_s.summary(1000.0),
            "capture_to_command_ms": self.capture_to_command_s.summary(1000.0),
            "cameras": per_camera,
            "seen": {
                label: {"frames": v.frames,
                        "closest_m": None if v.closest_m is None else round(v.closest_m, 2)}
                for label, v in sorted(self.seen.items())
            },
        }
