"""Cues: which sightings match, and when a cue is present (K of N, hysteresis, timeout)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from behaviors.config import CueSpec
from perception.detection import FrameResult, Sighting


def matches(cue: CueSpec, sighting: Sighting) -> bool:
    """Whether one sighting satisfies every filter of the cue (camera is checked per frame)."""
    if sighting.label != cue.label or sighting.score < cue.min_score:
        return False
    width, height = sighting.image_size
    x1, y1, x2, y2 = sighting.box
    if cue.min_box_area_frac > 0.0:
        if width <= 0 or height <= 0:
            return False
        if (max(x2 - x1, 0.0) * max(y2 - y1, 0.0)) / (width * height) < cue.min_box_area_frac:
            return False
    if cue.region is not None:
        if width <= 0 or height <= 0:
            return False
        if not cue.region.contains((x1 + x2) / 2.0 / width, (y1 + y2) / 2.0 / height):
            return False
    if cue.min_distance_m is not None or cue.max_distance_m is not None:
        if sighting.distance_m is None:
            return False
        if cue.min_distance_m is not None and sighting.distance_m < cue.min_distance_m:
            return False
        if cue.max_distance_m is not None and sighting.distance_m > cue.max_distance_m:
            return False
    if cue.max_abs_bearing_deg is not None:
        if sighting.bearing_rad is None:
            return False
        if abs(math.degrees(sighting.bearing_rad)) > cue.max_abs_bearing_deg:
            return False
    return True


@dataclass(frozen=True)
class CueEdge:
    """A cue became present (`rising`) or absent, at `time` (local clock)."""

    cue: str
    rising: bool
    time: float
    reason: str  # "seen", "missed", "timeout"
    sighting: Sighting | None = None


@dataclass
class CueState:
    """Presence of one cue.

    Rising: some camera saw it in K of its last N frames (per camera, so an object only one
    of two cameras sees still qualifies). Falling: M consecutive frames of the cue's cameras,
    all counted together, without it, or no sighting for `timeout_s`. On falling the windows
    are emptied, so the cue must again be seen K times before it is present: hysteresis.
    """

    name: str
    spec: CueSpec
    present: bool = False
    windows: dict[str, deque[bool]] = field(default_factory=dict)
    consecutive_misses: int = 0
    last_seen: float | None = None
    last_sighting: Sighting | None = None

    def observe(self, result: FrameResult) -> list[CueEdge]:
        p = self.spec.persistence
        edges: list[CueEdge] = []
        if self.last_seen is not None and result.time_local - self.last_seen > p.timeout_s:
            # Hits older than the timeout do not count toward K of N, nor keep the cue present.
            if self.present:
                edges.append(self._clear(result.time_local, "timeout"))
            self.windows.clear()
        hits = [s for s in result.sightings if matches(self.spec, s)]
        window = self.windows.setdefault(result.camera, deque(maxlen=p.of_last))
        window.append(bool(hits))
        if hits:
            self.consecutive_misses = 0
            self.last_seen = result.time_local
            self.last_sighting = max(hits, key=lambda s: s.score)  # first of equals: stable
            if not self.present and sum(window) >= p.seen_in:
                self.present = True
                edges.append(
                    CueEdge(self.name, True, result.time_local, "seen", self.last_sighting)
                )
            return edges
        self.consecutive_misses += 1
        if self.present and self.consecutive_misses >= p.clear_after_misses:
            edges.append(self._clear(result.time_local, "missed"))
        return edges

    def expire(self, now: float) -> CueEdge | None:
        if (
            self.present
            and self.last_seen is not None
            and now - self.last_seen > self.spec.persistence.timeout_s
        ):
            return self._clear(now, "timeout")
        return None

    def reset(self) -> None:
        self.windows.clear()
        self.consecutive_misses = 0

    def _clear(self, time: float, reason: str) -> CueEdge:
        self.present = False
        self.reset()
        return CueEdge(self.name, False, time, reason, self.last_sighting)


class CueTracker:
    """Presence of every cue of a rules file, fed frame by frame."""

    def __init__(self, cues: dict[str, CueSpec]) -> None:
        self.states = {name: CueState(name, spec) for name, spec in cues.items()}

    def observe(self, result: FrameResult) -> list[CueEdge]:
        edges = []
        for state in self.states.values():
            if state.spec.watches(result.camera):
                edges += state.observe(result)
        return edges

    def expire(self, now: float) -> list[CueEdge]:
        return [edge for state in self.states.values() if (edge := state.expire(now)) is not None]

    def present(self, cue: str) -> bool:
        return self.states[cue].present
