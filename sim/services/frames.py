"""Transforms snapshots shaped like a real Spot's: `body` is the root; `odom`, `vision`,
`flat_body` and each camera's sensor frame hang off it; `gpe` (ground plane) hangs off `odom`.

The camera edges never change, so they are built once into a template that each snapshot copies.
"""

from __future__ import annotations

from collections.abc import Iterable

from bosdyn.api import geometry_pb2
from bosdyn.client.frame_helpers import (
    BODY_FRAME_NAME,
    GRAV_ALIGNED_BODY_FRAME_NAME,
    GROUND_PLANE_FRAME_NAME,
    ODOM_FRAME_NAME,
    VISION_FRAME_NAME,
)
from bosdyn.client.math_helpers import SE3Pose

from sim.body_state import BodyState
from sim.cameras import CameraSpec
from sim.poses import body_pose, se3_to_proto, vision_tform_odom_se3


def set_edge(snapshot: geometry_pb2.FrameTreeSnapshot, child: str, parent: str, parent_tform_child: SE3Pose) -> None:
    edge = snapshot.child_to_parent_edge_map[child]
    edge.parent_frame_name = parent
    se3_to_proto(parent_tform_child, edge.parent_tform_child)


class SnapshotBuilder:
    """Builds FrameTreeSnapshots for a body state, with the camera frames included."""

    def __init__(self, cameras: Iterable[CameraSpec]) -> None:
        template = geometry_pb2.FrameTreeSnapshot()
        root = template.child_to_parent_edge_map[BODY_FRAME_NAME]
        root.parent_frame_name = ""
        root.parent_tform_child.rotation.w = 1.0
        # Spot's body frame is already level in the sim, so flat_body coincides with body.
        set_edge(template, GRAV_ALIGNED_BODY_FRAME_NAME, BODY_FRAME_NAME, SE3Pose.from_identity())
        for camera in cameras:
            set_edge(template, camera.frame_name, BODY_FRAME_NAME, camera.body_tform_camera)
        self._template = template
        self._vision_tform_odom = vision_tform_odom_se3()

    def snapshot(self, state: BodyState, out: geometry_pb2.FrameTreeSnapshot | None = None) -> geometry_pb2.FrameTreeSnapshot:
        snapshot = out if out is not None else geometry_pb2.FrameTreeSnapshot()
        snapshot.CopyFrom(self._template)
        odom_tform_body = state.odom_tform_body
        body_tform_odom = odom_tform_body.inverse()
        set_edge(snapshot, ODOM_FRAME_NAME, BODY_FRAME_NAME, body_tform_odom)
        set_edge(snapshot, VISION_FRAME_NAME, BODY_FRAME_NAME, body_tform_odom * self._vision_tform_odom.inverse())
        # Ground plane estimate: the floor (z = 0 in odom) under the body, facing the body's heading.
        set_edge(snapshot, GROUND_PLANE_FRAME_NAME, ODOM_FRAME_NAME, body_pose(state.x, state.y, 0.0, state.yaw))
        return snapshot

    def add_world_frame(
        self,
        snapshot: geometry_pb2.FrameTreeSnapshot,
        name: str,
        parent: str,
        parent_tform_child: SE3Pose,
    ) -> None:
        """Add a frame (e.g. `fiducial_<id>` under `vision`)."""
        set_edge(snapshot, name, parent, parent_tform_child)
