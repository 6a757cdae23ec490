"""The sim's frames and pose helpers: the body pose in `odom`, and the `vision` frame beside it.

`vision` is odom shifted by the fixed `VISION_TFORM_ODOM`. A real robot's vision frame drifts
away from odom; a fixed, non-trivial offset makes a client that mixes the two frames visibly
wrong instead of accidentally right. Kept apart from the body so the frame-tree, robot-state and
command services share one definition of the offset without depending on the physics.
"""

from __future__ import annotations

import math

from bosdyn.api import geometry_pb2
from bosdyn.client.math_helpers import Quat, SE2Pose, SE3Pose

# vision = VISION_TFORM_ODOM * odom (a fixed offset, see module doc).
VISION_TFORM_ODOM = SE2Pose(x=0.75, y=-0.4, angle=0.25)


def body_pose(x: float, y: float, z: float, yaw: float) -> SE3Pose:
    return SE3Pose(x, y, z, Quat(w=math.cos(yaw / 2.0), x=0.0, y=0.0, z=math.sin(yaw / 2.0)))


def wrap_angle(angle: float) -> float:
    return math.atan2(math.sin(angle), math.cos(angle))


def vision_tform_odom_se3() -> SE3Pose:
    return VISION_TFORM_ODOM.get_closest_se3_transform()


def se3_to_proto(pose: SE3Pose, out: geometry_pb2.SE3Pose) -> None:
    """Write an SE3Pose into an existing proto field without allocating a new message."""
    out.position.x, out.position.y, out.position.z = pose.x, pose.y, pose.z
    out.rotation.w, out.rotation.x, out.rotation.y, out.rotation.z = pose.rot.w, pose.rot.x, pose.rot.y, pose.rot.z
