"""What the behaviors know about the world: the latest sightings per camera, and target tracks."""

from __future__ import annotations

import math

from behaviors.geometry import RobotPose
from perception.detection import FrameResult, Sighting

# How fast a tracked target (a walking person) may plausibly move between two sightings; it
# widens the association gate while the target is unseen.
MAX_TARGET_SPEED_MPS = 1.5


class SightingMemory:
    """For each camera and label, the sightings of the latest frame that had that label.

    A later frame without the label does not erase them (one missed detection must not lose
    a target); readers ask for sightings no older than some age instead.
    """

    def __init__(self) -> None:
        self._latest: dict[tuple[str, str], list[Sighting]] = {}

    def update(self, result: FrameResult) -> None:
        by_label: dict[str, list[Sighting]] = {}
        for s in result.sightings:
            by_label.setdefault(s.label, []).append(s)
        for label, sightings in by_label.items():
            self._latest[(result.camera, label)] = sightings

    def recent(self, label: str, now: float, max_age_s: float) -> list[Sighting]:
        """Sightings of `label` taken at most `max_age_s` before `now`, camera by camera."""
        return [
            s
            for (_, seen_label), sightings in self._latest.items()
            if seen_label == label
            for s in sightings
            if now - s.time_local <= max_age_s
        ]

    def clear(self) -> None:
        self._latest.clear()


def sighting_xy(sighting: Sighting, pose: RobotPose) -> tuple[float, float] | None:
    """Where a sighting is in odom (x, y), or None when its geometry is unknown.

    `position_odom` is used when perception could place the object; otherwise distance and
    bearing are applied to the current pose (an approximation: they were measured from the
    pose at acquisition time, which is close at the agent's frame ages).
    """
    if sighting.position_odom is not None:
        return float(sighting.position_odom[0]), float(sighting.position_odom[1])
    if sighting.distance_m is not None and sighting.bearing_rad is not None:
        heading = pose.yaw + sighting.bearing_rad
        return (
            pose.x + sighting.distance_m * math.cos(heading),
            pose.y + sighting.distance_m * math.sin(heading),
        )
    return None


class TargetTrack:
    """One object of a label followed over time by nearest-neighbour association.

    Seeded by the sighting that fired the rule (or the nearest one to the robot); each update
    takes the newer sighting of the label closest to the track, if it falls inside a gate that
    widens with the time the target has been unseen. Other people walking by do not capture
    the track unless they come nearer to it than the gate.
    """

    def __init__(self, label: str, gate_m: float) -> None:
        self.label = label
        self.gate_m = gate_m
        self.position: tuple[float, float] | None = None
        self.last_seen: float | None = None

    def seed(self, sighting: Sighting, pose: RobotPose) -> bool:
        xy = sighting_xy(sighting, pose)
        if sighting.label != self.label or xy is None:
            return False
        self.position, self.last_seen = xy, sighting.time_local
        return True

    def update(self, memory: SightingMemory, now: float, pose: RobotPose, max_age_s: float) -> bool:
        """Take the best newer sighting into the track; True if one was taken."""
        best: tuple[float, float, float] | None = None  # (cost, x, y)
        best_time = 0.0
        for s in memory.recent(self.label, now, max_age_s):
            if self.last_seen is not None and s.time_local <= self.last_seen:
                continue
            xy = sighting_xy(s, pose)
            if xy is None:
                continue
            if self.position is None:
                cost = math.hypot(xy[0] - pose.x, xy[1] - pose.y)
            else:
                cost = math.hypot(xy[0] - self.position[0], xy[1] - self.position[1])
                unseen = max(0.0, s.time_local - (self.last_seen or s.time_local))
                if cost > self.gate_m + MAX_TARGET_SPEED_MPS * unseen:
                    continue
            if best is None or cost < best[0]:
                best, best_time = (cost, xy[0], xy[1]), s.time_local
        if best is None:
            return False
        self.position, self.last_seen = (best[1], best[2]), best_time
        return True
