"""Local grid service: the terrain grids a Spot serves (`terrain`, `terrain_valid`, `intensity`,
`no_step`, `obstacle_distance`), computed from the scene around the robot (sim/local_grids.py).

Each grid is run-length encoded (ENCODING_RLE) with the cell format and scale below; values are
`data * cell_value_scale + cell_value_offset`, cells packed x fastest (`data[xi + nx * yj]`), as
the SDK's stock `basic_streaming_visualizer` decodes them. The grid's frame
(`<type>_local_grid_corner`, the outer corner of cell (0, 0)) hangs off `odom` in the grid's
transforms snapshot, with the body tree at the grid's acquisition time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import numpy as np
import numpy.typing as npt
from bosdyn.api import local_grid_pb2, local_grid_service_pb2_grpc
from bosdyn.client.frame_helpers import ODOM_FRAME_NAME
from bosdyn.client.local_grid import LocalGridClient
from bosdyn.client.math_helpers import SE3Pose

from sim.body_state import BodyState
from sim.local_grids import (
    CELL_SIZE_M,
    GRID_CELLS,
    NO_STEP_MARGIN_M,
    GridFields,
    grid_fields,
    run_length_encode,
)
from sim.robot_clock import NSEC_PER_SEC, RobotClock
from sim.scene import Scenario
from sim.services.common import Reply, ServiceSpec
from sim.services.frames import SnapshotBuilder
from sim.world import SimWorld

CellFormat = local_grid_pb2.LocalGrid
GridStatus = local_grid_pb2.LocalGridResponse
MM = 0.001
FLOOR_INTENSITY, OBJECT_INTENSITY = 90, 200
REFRESH_HZ = 10.0  # the grids are recomputed at most this often


@dataclass(frozen=True)
class GridKind:
    cell_format: int
    dtype: type[np.generic]
    scale: float  # 0: values are the raw cells
    values: Callable[[GridFields], npt.NDArray[np.float64]]


GRID_KINDS: dict[str, GridKind] = {
    "terrain": GridKind(CellFormat.CELL_FORMAT_INT16, np.int16, MM, lambda f: f.height_m),
    "terrain_valid": GridKind(CellFormat.CELL_FORMAT_UINT8, np.uint8, 0.0, lambda f: np.ones_like(f.height_m)),
    "intensity": GridKind(
        CellFormat.CELL_FORMAT_UINT8, np.uint8, 0.0,
        lambda f: np.where(f.height_m > 0.0, OBJECT_INTENSITY, FLOOR_INTENSITY).astype(np.float64),
    ),
    # Signed distance to the nearest cell a foot must not land on: <= 0 is no-step.
    "no_step": GridKind(CellFormat.CELL_FORMAT_INT16, np.int16, MM, lambda f: f.distance_m - NO_STEP_MARGIN_M),
    # Signed distance to the nearest obstacle: negative inside one.
    "obstacle_distance": GridKind(CellFormat.CELL_FORMAT_INT16, np.int16, MM, lambda f: f.distance_m),
}


def grid_frame_name(grid_type: str) -> str:
    return f"{grid_type}_local_grid_corner"


def encode_grid(grid_type: str, fields: GridFields, body: BodyState, snapshots: SnapshotBuilder, out: local_grid_pb2.LocalGrid) -> None:
    kind = GRID_KINDS[grid_type]
    values = kind.values(fields)
    cells = np.round(values / kind.scale if kind.scale else values).astype(kind.dtype)
    runs, counts = run_length_encode(cells)
    out.local_grid_type_name = grid_type
    RobotClock.to_timestamp(body.robot_ns, out.acquisition_time)
    snapshots.snapshot(body, out.transforms_snapshot)
    frame = grid_frame_name(grid_type)
    odom_tform_corner = SE3Pose(fields.corner_x, fields.corner_y, 0.0, SE3Pose.from_identity().rotation)
    snapshots.add_world_frame(out.transforms_snapshot, frame, ODOM_FRAME_NAME, odom_tform_corner)
    out.frame_name_local_grid_data = frame
    out.extent.cell_size = CELL_SIZE_M
    out.extent.num_cells_x = out.extent.num_cells_y = GRID_CELLS
    out.cell_format = kind.cell_format  # type: ignore[assignment]
    out.encoding = local_grid_pb2.LocalGrid.ENCODING_RLE
    out.data = runs.astype(kind.dtype).tobytes()
    out.rle_counts.extend(counts)
    out.cell_value_scale = kind.scale
    out.cell_value_offset = 0.0


class LocalGridServicer(local_grid_service_pb2_grpc.LocalGridServiceServicer):
    spec = ServiceSpec(LocalGridClient.default_service_name, LocalGridClient.service_type)

    def __init__(self, clock: RobotClock, world: SimWorld, scenario: Scenario, snapshots: SnapshotBuilder) -> None:
        self._clock = clock
        self._world = world
        self._scenario = scenario
        self._snapshots = snapshots
        self._period_ns = int(NSEC_PER_SEC / REFRESH_HZ)
        self._lock = threading.Lock()
        self._cached: tuple[int, BodyState, GridFields] | None = None

    def add_to_server(self, server: grpc.Server) -> None:
        local_grid_service_pb2_grpc.add_LocalGridServiceServicer_to_server(self, server)

    def _current(self) -> tuple[BodyState, GridFields]:
        slot = self._clock.now_ns() // self._period_ns
        with self._lock:
            cached = self._cached
            if cached is None or cached[0] != slot:
                body = self._world.snapshot()
                cached = (slot, body, grid_fields(self._scenario, body.x, body.y, body.sim_time_s))
                self._cached = cached
        return cached[1], cached[2]

    def GetLocalGridTypes(
        self, request: local_grid_pb2.GetLocalGridTypesRequest, context: grpc.ServicerContext
    ) -> local_grid_pb2.GetLocalGridTypesResponse:
        response = local_grid_pb2.GetLocalGridTypesResponse()
        with Reply(response, request, self._clock):
            for name in GRID_KINDS:
                response.local_grid_type.add(name=name)
        return response

    def GetLocalGrids(
        self, request: local_grid_pb2.GetLocalGridsRequest, context: grpc.ServicerContext
    ) -> local_grid_pb2.GetLocalGridsResponse:
        response = local_grid_pb2.GetLocalGridsResponse()
        with Reply(response, request, self._clock):
            body, fields = self._current()
            for wanted in request.local_grid_requests:
                item = response.local_grid_responses.add(local_grid_type_name=wanted.local_grid_type_name)
                if wanted.local_grid_type_name not in GRID_KINDS:
                    item.status = GridStatus.STATUS_NO_SUCH_GRID
                    response.num_local_grid_errors += 1
                    continue
                encode_grid(wanted.local_grid_type_name, fields, body, self._snapshots, item.local_grid)
                item.status = GridStatus.STATUS_OK
        return response
