"""Randomised frames for a labelled dataset: where the robot stands, what the scene looks like.

From a base scenario and a seeded `numpy` generator, each frame gets: a camera, a time on the
people's walks, the scenario's people in a random appearance and height, extra people, a robot
pose that puts a person or sign 1-10 m in front of the camera at a random bearing (or anywhere,
for frames without a target), signs in random sizes and heights turned towards the camera within
60 degrees, and with `clutter` boxes, walls behind the target or around the
room, a random floor and backdrop, and lighting from dim (gain 0.2-0.5, gamma 1.2-1.7, sensor
noise) to bright. The same seed gives the same frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from bosdyn.client.math_helpers import SE3Pose

from sim.cameras import CameraSpec
from sim.poses import body_pose
from sim.scene import (
    PERSON_APPEARANCES,
    BoxObject,
    Lighting,
    PersonObject,
    Scenario,
    SceneObject,
    StopSignObject,
    WallObject,
)
from sim.spot_limits import SpotLimits

DISTANCE_M = (1.0, 10.0)  # target distance from the camera
BEARING_DEG = 45.0  # target bearing from the camera's axis (the image spans about +-49 degrees)
TARGET_PROBABILITY = 0.85  # the rest: a random pose (many frames with nobody in view)
FLOORS = ("concrete", "tiles", "carpet", "wood")
BOX_SURFACES = ("cardboard", "wood", "plain")
WALL_SURFACES = ("brick", "plaster", "panels")


@dataclass(frozen=True)
class VariationOptions:
    appearances: tuple[str, ...] = PERSON_APPEARANCES
    clutter: bool = True  # boxes, walls, floors, backdrops
    dim_fraction: float = 0.35  # share of dim frames
    extra_people: int = 2  # up to this many people added around the target


@dataclass(frozen=True)
class FrameSpec:
    """Everything one rendered frame depends on."""

    scenario: Scenario
    camera: CameraSpec
    odom_tform_body: SE3Pose
    t: float


def camera_heading(camera: CameraSpec) -> tuple[float, np.ndarray]:
    """(the optical axis's yaw in the body frame, the camera's x, y on the body)."""
    axis = camera.body_tform_camera.to_matrix()[:3, 2]
    return math.atan2(axis[1], axis[0]), np.array([camera.body_tform_camera.x, camera.body_tform_camera.y])


def _ahead(origin: np.ndarray, heading: float, distance: float, bearing: float) -> tuple[float, float]:
    return (
        float(origin[0] + distance * math.cos(heading + bearing)),
        float(origin[1] + distance * math.sin(heading + bearing)),
    )


def _robot_pose(camera: CameraSpec, target: tuple[float, float] | None, rng: np.random.Generator) -> SE3Pose:
    """A body pose whose camera sees `target` at 1-10 m and a random bearing (None: anywhere)."""
    yaw = float(rng.uniform(-math.pi, math.pi))
    cam_yaw, cam_xy = camera_heading(camera)
    rot = np.array([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    if target is None:
        body_xy = rng.uniform(-5.0, 5.0, size=2)
    else:
        distance = float(rng.uniform(*DISTANCE_M))
        bearing = math.radians(float(rng.uniform(-BEARING_DEG, BEARING_DEG)))
        heading = yaw + cam_yaw + bearing
        camera_xy = np.array(target) - distance * np.array([math.cos(heading), math.sin(heading)])
        body_xy = camera_xy - rot @ cam_xy
    return body_pose(float(body_xy[0]), float(body_xy[1]), SpotLimits().stand_height, yaw)


def _person(rng: np.random.Generator, xy: tuple[float, float], options: VariationOptions) -> PersonObject:
    return PersonObject(
        type="person",
        pose={"x": xy[0], "y": xy[1], "yaw_deg": float(rng.uniform(-180, 180))},  # type: ignore[arg-type]
        height_m=float(rng.uniform(1.55, 1.95)),
        appearance=str(rng.choice(list(options.appearances))),  # type: ignore[arg-type]
    )


def _varied_objects(base: Scenario, t: float, rng: np.random.Generator, options: VariationOptions) -> list[SceneObject]:
    """The base objects, people re-dressed (and frozen where they are at `t`)."""
    objects: list[SceneObject] = []
    for obj in base.objects:
        if isinstance(obj, PersonObject):
            objects.append(_person(rng, obj.pose_at(t)[:2], options))
        else:
            objects.append(obj)
    return objects


def _lighting(rng: np.random.Generator, options: VariationOptions) -> Lighting:
    if rng.random() < options.dim_fraction:
        return Lighting(gain=rng.uniform(0.2, 0.5), gamma=rng.uniform(1.2, 1.7), noise_sigma=rng.uniform(2.0, 6.0))
    if not options.clutter:
        return Lighting()
    return Lighting(gain=rng.uniform(0.8, 1.15), gamma=rng.uniform(0.9, 1.1), noise_sigma=rng.uniform(0.0, 2.5))


def _clutter(
    rng: np.random.Generator, camera_xy: np.ndarray, heading: float, keep_clear: list[tuple[float, float]]
) -> list[SceneObject]:
    """0-4 boxes in view, away from people and signs."""
    boxes: list[SceneObject] = []
    for _ in range(int(rng.integers(0, 5))):
        xy = _ahead(camera_xy, heading, float(rng.uniform(1.5, 9.0)), math.radians(float(rng.uniform(-50, 50))))
        if any(math.hypot(xy[0] - x, xy[1] - y) < 0.9 for x, y in keep_clear):
            continue
        boxes.append(
            BoxObject(
                type="box",
                pose={"x": xy[0], "y": xy[1], "yaw_deg": float(rng.uniform(0, 90))},  # type: ignore[arg-type]
                length_m=float(rng.uniform(0.3, 1.4)),
                width_m=float(rng.uniform(0.3, 1.0)),
                height_m=float(rng.uniform(0.3, 1.3)),
                surface=str(rng.choice(BOX_SURFACES)),  # type: ignore[arg-type]
            )
        )
        keep_clear.append(xy)
    return boxes


def _walls(rng: np.random.Generator, camera_xy: np.ndarray, heading: float) -> list[WallObject]:
    """A room around the camera 11-14 m out (beyond every target): textured background."""
    half = float(rng.uniform(11.0, 14.0))
    surface = str(rng.choice(WALL_SURFACES))
    height = float(rng.uniform(2.4, 4.0))
    c, s = math.cos(heading), math.sin(heading)
    corners = [camera_xy + half * np.array([c * a - s * b, s * a + c * b]) for a, b in ((1, 1), (1, -1), (-1, -1), (-1, 1))]
    walls = []
    for p, q in zip(corners, corners[1:] + corners[:1]):
        walls.append(
            WallObject(
                type="wall", start={"x": p[0], "y": p[1]}, end={"x": q[0], "y": q[1]},  # type: ignore[arg-type]
                height_m=height, surface=surface,  # type: ignore[arg-type]
            )
        )
    return walls


def _turned_sign(sign: StopSignObject, rng: np.random.Generator, camera_xy: np.ndarray, t: float) -> StopSignObject:
    """The sign in another size and height, facing the camera within 60 degrees (drawn last, so
    the people and poses of a seed do not depend on it)."""
    x, y, _ = sign.pose_at(t)
    size = float(rng.uniform(0.4, 0.75))
    yaw = math.degrees(math.atan2(camera_xy[1] - y, camera_xy[0] - x)) + float(rng.uniform(-60.0, 60.0))
    pose = {"x": x, "y": y, "z": float(rng.uniform(size / 2 + 0.2, 1.5)), "yaw_deg": yaw}
    return StopSignObject(type="stop_sign", name=sign.name, size_m=size, pose=pose)  # type: ignore[arg-type]


def _camera_xy_heading(camera: CameraSpec, odom_tform_body: SE3Pose) -> tuple[np.ndarray, float]:
    mat = (odom_tform_body * camera.body_tform_camera).to_matrix()
    return mat[:2, 3].copy(), math.atan2(mat[1, 2], mat[0, 2])


def frame_spec(base: Scenario, camera: CameraSpec, rng: np.random.Generator, options: VariationOptions) -> FrameSpec:
    """One randomised frame of `base` seen by `camera` (see the module doc)."""
    t = float(rng.uniform(0.0, 20.0))
    objects = _varied_objects(base, t, rng, options)
    extra = int(rng.integers(0, options.extra_people + 1))
    targets = [o.pose_at(t)[:2] for o in objects if isinstance(o, (PersonObject, StopSignObject))]
    if not targets and extra:
        objects.append(_person(rng, (float(rng.uniform(-5, 5)), float(rng.uniform(-5, 5))), options))
        targets, extra = [objects[-1].pose_at(t)[:2]], extra - 1
    target = targets[int(rng.integers(len(targets)))] if targets and rng.random() < TARGET_PROBABILITY else None
    body = _robot_pose(camera, target, rng)
    camera_xy, heading = _camera_xy_heading(camera, body)
    for _ in range(extra):
        bearing = math.radians(float(rng.uniform(-55, 55)))
        objects.append(_person(rng, _ahead(camera_xy, heading, float(rng.uniform(*DISTANCE_M)), bearing), options))
    fields: dict[str, object] = {}
    if options.clutter:
        keep_clear = [o.pose_at(t)[:2] for o in objects]
        objects += _clutter(rng, camera_xy, heading, keep_clear)
        if rng.random() < 0.6:
            objects += _walls(rng, camera_xy, heading)
        fields = {"floor": str(rng.choice(FLOORS)), "backdrop_grey": int(rng.integers(110, 221))}
    lighting = _lighting(rng, options)
    objects = [_turned_sign(o, rng, camera_xy, t) if isinstance(o, StopSignObject) else o for o in objects]
    scenario = Scenario(objects=objects, lighting=lighting, **fields)  # type: ignore[arg-type]
    return FrameSpec(scenario=scenario, camera=camera, odom_tform_body=body, t=t)
