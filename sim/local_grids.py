"""What the robot's terrain perception would make of the scene: height, obstacle distance and
no-step around the body, computed from the scenario's geometry (no cameras involved).

The grids are square (`GRID_CELLS` x `GRID_CELLS` cells of `CELL_SIZE_M`, 3.84 m a side, as
Spot's), aligned with odom, their corner snapped to whole cells so a cell stays where it is as the
robot walks. Footprints: a box is its rectangle; a wall a `WALL_THICKNESS_M` strip; a person a
disc of `PERSON_RADIUS_M` where they are at that moment; a stop sign its stand; an AprilTag its
board. The floor is z = 0 and always steppable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim.scene import AprilTagObject, BoxObject, PersonObject, Scenario, StopSignObject, WallObject

GRID_CELLS = 128
CELL_SIZE_M = 0.03
WALL_THICKNESS_M = 0.10
PERSON_RADIUS_M = 0.25
SIGN_STAND_RADIUS_M = 0.15
TAG_BOARD_THICKNESS_M = 0.05
TAG_BOARD_MARGIN = 1.5  # board width / tag size
NO_STEP_MARGIN_M = 0.05  # how close to an obstacle's edge a foot must not land
MAX_OBSTACLE_DISTANCE_M = 2.0  # the distance grid saturates here

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class GridFields:
    """Per-cell values, arrays of shape (GRID_CELLS_y, GRID_CELLS_x): index [yj, xi]."""

    corner_x: float  # odom position of cell (0, 0)'s outer corner
    corner_y: float
    height_m: Floats  # top of whatever stands on the cell, 0 for the floor
    distance_m: Floats  # signed distance to the nearest obstacle footprint (negative inside)


def _rectangle(px: Floats, py: Floats, cx: float, cy: float, yaw: float, half_l: float, half_w: float) -> Floats:
    c, s = math.cos(yaw), math.sin(yaw)
    lx = np.abs(c * (px - cx) + s * (py - cy)) - half_l
    ly = np.abs(-s * (px - cx) + c * (py - cy)) - half_w
    outside = np.hypot(np.maximum(lx, 0.0), np.maximum(ly, 0.0))
    result: Floats = outside + np.minimum(np.maximum(lx, ly), 0.0)
    return result


def _segment(px: Floats, py: Floats, x0: float, y0: float, x1: float, y1: float, half_thickness: float) -> Floats:
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((px - x0) * dx + (py - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    result: Floats = np.hypot(px - (x0 + t * dx), py - (y0 + t * dy)) - half_thickness
    return result


def _footprints(scenario: Scenario, px: Floats, py: Floats, t: float) -> list[tuple[Floats, float]]:
    """(signed distance field, height) of every object standing on the floor."""
    fields: list[tuple[Floats, float]] = []
    for obj in scenario.objects:
        if isinstance(obj, BoxObject):
            x, y, yaw = obj.pose_at(t)
            fields.append((_rectangle(px, py, x, y, yaw, obj.length_m / 2, obj.width_m / 2), obj.height_m))
        elif isinstance(obj, WallObject):
            seg = _segment(px, py, obj.start.x, obj.start.y, obj.end.x, obj.end.y, WALL_THICKNESS_M / 2)
            fields.append((seg, obj.height_m))
        elif isinstance(obj, PersonObject):
            x, y, _ = obj.pose_at(t)
            fields.append((np.hypot(px - x, py - y) - PERSON_RADIUS_M, obj.height_m))
        elif isinstance(obj, StopSignObject):
            x, y, _ = obj.pose_at(t)
            fields.append((np.hypot(px - x, py - y) - SIGN_STAND_RADIUS_M, obj.pose.z + obj.size_m / 2))
        elif isinstance(obj, AprilTagObject):
            x, y, yaw = obj.pose_at(t)  # the board runs across the direction the face points
            half = obj.size_m * TAG_BOARD_MARGIN / 2
            board = _rectangle(px, py, x, y, yaw, TAG_BOARD_THICKNESS_M / 2, half)
            fields.append((board, obj.pose.z + half))
    return fields


def grid_fields(scenario: Scenario, robot_x: float, robot_y: float, t: float) -> GridFields:
    """The grids around (robot_x, robot_y) in odom at sim time `t`."""
    half = GRID_CELLS * CELL_SIZE_M / 2
    corner_x = math.floor((robot_x - half) / CELL_SIZE_M) * CELL_SIZE_M
    corner_y = math.floor((robot_y - half) / CELL_SIZE_M) * CELL_SIZE_M
    centres = (np.arange(GRID_CELLS) + 0.5) * CELL_SIZE_M
    px, py = np.meshgrid(corner_x + centres, corner_y + centres)  # [yj, xi]
    distance = np.full(px.shape, MAX_OBSTACLE_DISTANCE_M)
    height = np.zeros(px.shape)
    for field, top in _footprints(scenario, px, py, t):
        distance = np.minimum(distance, field)
        height = np.where(field <= 0.0, np.maximum(height, top), height)
    return GridFields(corner_x, corner_y, height, np.clip(distance, -MAX_OBSTACLE_DISTANCE_M, MAX_OBSTACLE_DISTANCE_M))


def run_length_encode(values: npt.NDArray[np.generic]) -> tuple[npt.NDArray[np.generic], list[int]]:
    """(value of each run, length of each run) of a flat array, as LocalGrid's ENCODING_RLE stores it."""
    flat = values.ravel()
    if flat.size == 0:
        return flat, []
    starts = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1))
    counts = np.diff(np.concatenate((starts, [flat.size])))
    return flat[starts], [int(c) for c in counts]
