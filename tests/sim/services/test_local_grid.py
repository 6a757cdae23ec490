"""Local grids through the SDK's LocalGridClient, decoded as the stock
`visualizer/basic_streaming_visualizer.py` decodes them (RLE runs, cell format, scale), checked
against the scene's geometry; and `python -m bosdyn.client HOST local_grid ...`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from bosdyn.api import local_grid_pb2
from bosdyn.client.frame_helpers import BODY_FRAME_NAME, ODOM_FRAME_NAME, VISION_FRAME_NAME, get_a_tform_b
from bosdyn.client.local_grid import LocalGridClient
from bosdyn.client.robot import Robot
from support.sdk_cli import run_sdk_cli

from sim.scene import parse_scenario
from sim.server import SimServer
from sim.testing import running_sim, sdk_robot

GRID_TYPES = ["terrain", "terrain_valid", "intensity", "no_step", "obstacle_distance"]
DTYPES = {
    local_grid_pb2.LocalGrid.CELL_FORMAT_INT16: np.int16,
    local_grid_pb2.LocalGrid.CELL_FORMAT_UINT8: np.uint8,
    local_grid_pb2.LocalGrid.CELL_FORMAT_FLOAT32: np.float32,
}
# A 0.6 x 0.4 x 0.5 m box 1 m ahead of the robot, turned 90 degrees; a wall 1.5 m to its left.
SCENE = {
    "objects": [
        {"type": "box", "pose": {"x": 1.0, "y": 0.0, "yaw_deg": 90}, "length_m": 0.6, "width_m": 0.4, "height_m": 0.5},
        {"type": "wall", "start": {"x": -1.0, "y": 1.5}, "end": {"x": 1.0, "y": 1.5}, "height_m": 2.0},
    ]
}


@pytest.fixture
def grid_sim() -> Iterator[SimServer]:
    with running_sim(parse_scenario(SCENE, "test scene")) as server:
        yield server


@pytest.fixture
def grid_robot(grid_sim: SimServer) -> Iterator[Robot]:
    with sdk_robot(grid_sim, "local-grids") as robot:
        yield robot


def decode(grid: local_grid_pb2.LocalGrid) -> npt.NDArray[np.float64]:
    """Cell values as [yj, xi], the way the stock visualizer unpacks them."""
    raw = np.frombuffer(grid.data, dtype=DTYPES[grid.cell_format])
    if grid.encoding == local_grid_pb2.LocalGrid.ENCODING_RLE:
        raw = np.repeat(raw, list(grid.rle_counts))
    values = raw.astype(np.float64)
    if grid.cell_value_scale:
        values = values * grid.cell_value_scale + grid.cell_value_offset
    return values.reshape(grid.extent.num_cells_y, grid.extent.num_cells_x)


def value_at(grid: local_grid_pb2.LocalGrid, x: float, y: float) -> float:
    """The value of the cell holding odom point (x, y)."""
    odom_tform_grid = get_a_tform_b(grid.transforms_snapshot, ODOM_FRAME_NAME, grid.frame_name_local_grid_data)
    xi = int((x - odom_tform_grid.x) // grid.extent.cell_size)
    yj = int((y - odom_tform_grid.y) // grid.extent.cell_size)
    return float(decode(grid)[yj, xi])


def _grids(robot: Robot, *names: str) -> dict[str, local_grid_pb2.LocalGrid]:
    responses = robot.ensure_client(LocalGridClient.default_service_name).get_local_grids(list(names))
    assert all(r.status == local_grid_pb2.LocalGridResponse.STATUS_OK for r in responses)
    return {r.local_grid_type_name: r.local_grid for r in responses}


def test_grid_types_are_spots(grid_robot: Robot) -> None:
    types = grid_robot.ensure_client(LocalGridClient.default_service_name).get_local_grid_types()
    assert [t.name for t in types] == GRID_TYPES


def test_grids_are_around_the_robot_with_their_frames(grid_robot: Robot) -> None:
    for name, grid in _grids(grid_robot, *GRID_TYPES).items():
        assert grid.local_grid_type_name == name
        assert decode(grid).shape == (128, 128)
        assert grid.HasField("acquisition_time")
        body_tform_grid = get_a_tform_b(grid.transforms_snapshot, BODY_FRAME_NAME, grid.frame_name_local_grid_data)
        half = 64 * grid.extent.cell_size  # the robot is at the grid's centre, within a cell
        assert body_tform_grid.x == pytest.approx(-half, abs=grid.extent.cell_size)
        assert body_tform_grid.y == pytest.approx(-half, abs=grid.extent.cell_size)
        assert get_a_tform_b(grid.transforms_snapshot, VISION_FRAME_NAME, grid.frame_name_local_grid_data) is not None


def test_grids_show_the_scene(grid_robot: Robot) -> None:
    grids = _grids(grid_robot, *GRID_TYPES)
    terrain, distance, no_step = grids["terrain"], grids["obstacle_distance"], grids["no_step"]
    # The box (turned: 0.4 m along x, 0.6 m along y, centred at x = 1.0).
    assert value_at(terrain, 1.0, 0.0) == pytest.approx(0.5, abs=0.001)
    assert value_at(terrain, 1.0, 0.25) == pytest.approx(0.5, abs=0.001)
    assert value_at(terrain, 0.5, 0.0) == pytest.approx(0.0)  # the floor
    assert value_at(distance, 1.0, 0.0) < 0.0  # inside
    assert value_at(distance, 0.3, 0.0) == pytest.approx(0.5, abs=0.03)  # 0.5 m before its near face (x = 0.8)
    assert value_at(distance, 1.0, 0.6) == pytest.approx(0.3, abs=0.03)  # 0.3 m beyond its side (y = 0.3)
    assert value_at(distance, -1.0, 1.0) == pytest.approx(0.45, abs=0.03)  # the wall: 0.1 m thick at y = 1.5
    assert value_at(terrain, 0.0, 1.5) == pytest.approx(2.0, abs=0.001)
    assert value_at(no_step, 1.0, 0.0) <= 0.0 and value_at(no_step, 0.78, 0.0) <= 0.0  # on it and at its edge
    assert value_at(no_step, 0.3, 0.0) > 0.0
    assert np.all(decode(grids["terrain_valid"]) == 1)
    intensity = grids["intensity"]
    assert value_at(intensity, 1.0, 0.0) != value_at(intensity, 0.3, 0.0)


def test_grids_follow_the_robot(grid_sim: SimServer, grid_robot: Robot) -> None:
    grid_sim.world.teleport(0.8, -1.0, 1.2)
    time.sleep(0.25)  # the grids are recomputed at 10 Hz
    terrain = _grids(grid_robot, "terrain")["terrain"]
    odom_tform_grid = get_a_tform_b(terrain.transforms_snapshot, ODOM_FRAME_NAME, terrain.frame_name_local_grid_data)
    assert odom_tform_grid.x == pytest.approx(0.8 - 1.92, abs=0.03)
    assert odom_tform_grid.y == pytest.approx(-1.0 - 1.92, abs=0.03)
    assert value_at(terrain, 1.0, 0.0) == pytest.approx(0.5, abs=0.001)  # the box has not moved in odom


def test_unknown_grid_type_is_reported_per_grid(grid_robot: Robot) -> None:
    client = grid_robot.ensure_client(LocalGridClient.default_service_name)
    responses = client.get_local_grids(["terrain", "elevation"])
    assert [r.status for r in responses] == [
        local_grid_pb2.LocalGridResponse.STATUS_OK, local_grid_pb2.LocalGridResponse.STATUS_NO_SUCH_GRID,
    ]


def test_sdk_command_line_lists_and_gets_grids(grid_sim: SimServer, tmp_path: Path) -> None:
    assert run_sdk_cli(grid_sim, tmp_path, "local_grid", "types").stdout.split() == GRID_TYPES
    out = run_sdk_cli(grid_sim, tmp_path, "local_grid", "get", "obstacle_distance").stdout
    assert 'local_grid_type_name: "obstacle_distance"' in out and "STATUS_OK" in out and "ENCODING_RLE" in out
