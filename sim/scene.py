"""Scenarios for the simulated robot: what stands where in the world, loaded from YAML.

A scenario file (configs/scenarios/*.yaml) holds the robot's start pose and a list of objects,
each picked by its `type`: `apriltag`, `stop_sign`, `person`. Poses are in the `odom` frame
(x, y metres on the floor, z metres above it, `yaw_deg` degrees counter-clockwise from +x).
In Python, `yaw` is always radians; YAML files say `yaw_deg` so nobody has to guess.

Frame of an AprilTag (`AprilTagObject.odom_tform_tag`), the convention of Spot's
`fiducial_<id>` frames and of OpenCV's aruco pose estimation: origin at the centre of the
tag, z out of the printed face (towards whoever can read it), x to the reader's right, y up
along the printed image. `size_m` is the edge of the black square (OpenCV's "marker length":
the outer black border included, the white margin around it excluded).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal, get_args

import numpy as np
from bosdyn.client.math_helpers import Quat, SE3Pose
from pydantic import Field, PrivateAttr, model_validator

import configs
from configs.loading import ConfigError, StrictModel, read_yaml, validate_config

APRILTAG_36H11_IDS = 587  # tag36h11 has ids 0..586

# How a person looks: the astronaut photo with drawn legs, or a pedestrian cut out of OpenCV's
# vtest.avi (sim/assets/people/, see sim/assets/README.md).
PersonAppearance = Literal[
    "astronaut", "walker_jeans_front", "walker_jeans_side", "walker_dark_stride", "walker_dark_coat",
    "walker_puffer", "walker_grey_coat",
]  # fmt: skip
PERSON_APPEARANCES: tuple[str, ...] = get_args(PersonAppearance)
Surface = Literal["cardboard", "wood", "plain", "brick", "plaster", "panels"]
FloorKind = Literal["concrete", "tiles", "carpet", "wood"]


class ScenarioError(ConfigError):
    """A scenario file is missing, not YAML, or does not validate. The message names the file and
    field, worded as every config's errors are (`configs.loading`)."""


class Pose2D(StrictModel):
    """A pose on the floor, in odom."""

    x: float = Field(0.0, description="metres, odom x")
    y: float = Field(0.0, description="metres, odom y")
    yaw_deg: float = Field(0.0, description="heading in degrees, counter-clockwise from odom +x")

    @property
    def yaw(self) -> float:
        """Heading in radians."""
        return math.radians(self.yaw_deg)


class Pose3D(Pose2D):
    """A pose on the floor plus the height of the object's centre."""

    z: float = Field(..., ge=0.0, description="metres above the floor of the object's centre")


class Waypoint(StrictModel):
    x: float = Field(..., description="metres, odom x")
    y: float = Field(..., description="metres, odom y")
    speed_mps: float = Field(1.0, gt=0.0, le=3.0, description="walking speed on the way to this waypoint")


class PersonPath(StrictModel):
    """Where a person walks: from their pose through the waypoints, then stops or loops."""

    waypoints: list[Waypoint] = Field(..., min_length=1, description="visited in order")
    at_end: Literal["stop", "loop"] = Field(
        "stop",
        description="stop at the last waypoint, or walk back to the start (at the first waypoint's speed) and repeat",
    )
    start_delay_s: float = Field(0.0, ge=0.0, description="seconds after sim start before walking")


class _SceneObject(StrictModel):
    name: str = Field("", description="optional label for logs")

    def pose_at(self, t: float) -> tuple[float, float, float]:
        """(x, y, yaw radians) in odom at `t` seconds since sim start."""
        pose: Pose2D = self.pose  # type: ignore[attr-defined]
        return pose.x, pose.y, pose.yaw


class AprilTagObject(_SceneObject):
    """An AprilTag (family 36h11) printed on a white board, standing upright, facing `pose.yaw_deg`."""

    type: Literal["apriltag"]
    tag_id: int = Field(..., ge=0, lt=APRILTAG_36H11_IDS, description="tag36h11 id")
    size_m: float = Field(
        ..., gt=0.02, le=2.0, description="edge of the black square in metres (OpenCV's marker length)"
    )
    pose: Pose3D = Field(..., description="centre of the tag; yaw_deg = direction its face points")

    def odom_tform_tag(self, t: float = 0.0) -> SE3Pose:
        """Tag frame in odom: z out of the face, x to the reader's right, y up (see module doc)."""
        x, y, yaw = self.pose_at(t)
        return tag_pose(x, y, self.pose.z, yaw)


class StopSignObject(_SceneObject):
    """A stop sign (octagon, white border and STOP letters) on a post, facing `pose.yaw_deg`.

    Smaller and lower than a road sign, like a portable sign on a stand, so the robot's
    downward-looking cameras see it.
    """

    type: Literal["stop_sign"]
    size_m: float = Field(0.6, gt=0.1, le=1.5, description="width of the octagon across flats")
    pose: Pose3D = Field(..., description="centre of the octagon; yaw_deg = direction its face points")

    @model_validator(mode="after")
    def _sign_above_floor(self) -> StopSignObject:
        if self.pose.z < self.size_m / 2.0:
            raise ValueError(f"pose.z ({self.pose.z} m) must be at least size_m / 2 ({self.size_m / 2.0} m)")
        return self


class PersonObject(_SceneObject):
    """A standing or walking person. `pose` is where they start; they face their walking direction."""

    type: Literal["person"]
    pose: Pose2D = Field(..., description="start position and heading")
    height_m: float = Field(1.75, gt=0.5, le=2.3, description="standing height")
    appearance: PersonAppearance = Field("astronaut", description="which person texture (sim/assets)")
    path: PersonPath | None = Field(None, description="optional walk; without it the person stands still")

    # Legs of the walk: (start x, start y, end x, end y, start time, duration), filled after validation.
    _legs: list[tuple[float, float, float, float, float, float]] = PrivateAttr(default_factory=list)
    _walk_s: float = PrivateAttr(0.0)

    def model_post_init(self, __context: object) -> None:
        if self.path is None:
            return
        points = [(self.pose.x, self.pose.y)] + [(w.x, w.y) for w in self.path.waypoints]
        speeds = [w.speed_mps for w in self.path.waypoints]
        if self.path.at_end == "loop":
            points.append((self.pose.x, self.pose.y))
            speeds.append(self.path.waypoints[0].speed_mps)
        start = 0.0
        for (x0, y0), (x1, y1), speed in zip(points[:-1], points[1:], speeds):
            duration = math.hypot(x1 - x0, y1 - y0) / speed
            self._legs.append((x0, y0, x1, y1, start, duration))
            start += duration
        self._walk_s = start

    def pose_at(self, t: float) -> tuple[float, float, float]:
        """(x, y, yaw radians) in odom at `t` seconds since sim start, walking along the path."""
        if self.path is None or not self._legs:
            return super().pose_at(t)
        walked = t - self.path.start_delay_s
        if walked <= 0.0:
            return super().pose_at(t)
        if self.path.at_end == "loop" and self._walk_s > 0.0:
            walked = math.fmod(walked, self._walk_s)
        yaw = self.pose.yaw
        for x0, y0, x1, y1, start, duration in self._legs:
            if duration > 0.0:
                yaw = math.atan2(y1 - y0, x1 - x0)
            if walked < start + duration:
                frac = (walked - start) / duration if duration > 0.0 else 1.0
                return x0 + frac * (x1 - x0), y0 + frac * (y1 - y0), yaw
        _, _, x_end, y_end, _, _ = self._legs[-1]
        return x_end, y_end, yaw


class BoxObject(_SceneObject):
    """A box standing on the floor (a crate, a cabinet, a table-sized block): clutter that hides
    what is behind it and is not a person."""

    type: Literal["box"]
    pose: Pose2D = Field(..., description="centre of the footprint; yaw_deg turns the box")
    length_m: float = Field(0.6, gt=0.05, le=5.0, description="along yaw_deg")
    width_m: float = Field(0.4, gt=0.05, le=5.0, description="across yaw_deg")
    height_m: float = Field(0.5, gt=0.05, le=3.0, description="top above the floor")
    surface: Surface = Field("cardboard", description="texture of its faces")


class Point2D(StrictModel):
    x: float = Field(..., description="metres, odom x")
    y: float = Field(..., description="metres, odom y")


class WallObject(_SceneObject):
    """A textured vertical wall from `start` to `end` on the floor: a background, painted behind
    every nearer object (place walls beyond the objects, as a room's walls are)."""

    type: Literal["wall"]
    start: Point2D
    end: Point2D
    height_m: float = Field(2.5, gt=0.1, le=10.0, description="top above the floor")
    surface: Surface = Field("plaster", description="texture of its face")

    @model_validator(mode="after")
    def _has_length(self) -> WallObject:
        if math.hypot(self.end.x - self.start.x, self.end.y - self.start.y) < 0.05:
            raise ValueError("start and end must be at least 0.05 m apart")
        return self

    def pose_at(self, t: float) -> tuple[float, float, float]:
        """The wall's midpoint and the direction it runs."""
        dx, dy = self.end.x - self.start.x, self.end.y - self.start.y
        return (self.start.x + self.end.x) / 2.0, (self.start.y + self.end.y) / 2.0, math.atan2(dy, dx)


class Lighting(StrictModel):
    """How bright the scene is and how noisy the sensor: applied to every rendered grey frame as
    `255 * gain * (grey / 255) ** gamma` plus Gaussian read noise (a dim room: gain 0.3, gamma 1.4,
    noise 4)."""

    gain: float = Field(1.0, gt=0.02, le=2.0, description="brightness multiplier")
    gamma: float = Field(1.0, ge=0.3, le=3.0, description="> 1 darkens the mid-tones")
    noise_sigma: float = Field(0.0, ge=0.0, le=40.0, description="sensor noise, grey levels (standard deviation)")


SceneObject = Annotated[
    AprilTagObject | StopSignObject | PersonObject | BoxObject | WallObject, Field(discriminator="type")
]


class Scenario(StrictModel):
    """The simulated world: the robot's start pose and the objects around it."""

    description: str = Field("", description="what this scenario shows or tests")
    robot_start: Pose2D = Field(default_factory=Pose2D, description="robot body pose in odom at sim start")
    objects: list[SceneObject] = Field(default_factory=list, description="things the cameras can see")
    floor: FloorKind = Field("concrete", description="floor texture")
    backdrop_grey: int = Field(205, ge=0, le=255, description="grey above the horizon where no wall is")
    lighting: Lighting = Field(default_factory=Lighting, description="brightness, contrast and sensor noise")

    @model_validator(mode="after")
    def _unique_tag_ids(self) -> Scenario:
        seen: set[int] = set()
        for obj in self.objects:
            if isinstance(obj, AprilTagObject):
                if obj.tag_id in seen:
                    raise ValueError(f"tag_id {obj.tag_id} is used by more than one apriltag")
                seen.add(obj.tag_id)
        return self

    @property
    def tags(self) -> list[AprilTagObject]:
        return [o for o in self.objects if isinstance(o, AprilTagObject)]


def tag_pose(x: float, y: float, z: float, yaw: float) -> SE3Pose:
    """Pose of an upright tag whose face points along `yaw`: z = face normal, y = up, x = y cross z."""
    # Rotation matrix columns: x = (-sin, cos, 0), y = (0, 0, 1), z = (cos, sin, 0).
    c, s = math.cos(yaw), math.sin(yaw)
    rot = np.array([[-s, 0.0, c], [c, 0.0, s], [0.0, 1.0, 0.0]])
    return SE3Pose(x, y, z, Quat.from_matrix(rot))


def parse_scenario(data: object, source: str) -> Scenario:
    """Validate already-loaded YAML data; errors name `source` and the field."""
    try:
        return validate_config(source, data, Scenario)
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file. Raises ScenarioError naming the file (and field)."""
    path = Path(path)
    try:
        data = read_yaml(path, "scenario file")
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from None
    return parse_scenario(data, str(path))


def scenario_dir() -> Path:
    """The shipped scenarios (installed with the package)."""
    return configs.SHIPPED_DIR / configs.SCENARIOS


def default_scenario_path() -> Path:
    return configs.shipped("default", configs.SCENARIOS)


def find_scenario(value: str | Path) -> Path:
    """A scenario file by path, else a shipped scenario by name (`person_walking`)."""
    try:
        return configs.find(value, configs.SCENARIOS)
    except configs.ConfigError as exc:
        raise ScenarioError(str(exc)) from None
