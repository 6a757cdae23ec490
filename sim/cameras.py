"""The simulated robot's five body cameras: names, mounting poses and pinhole intrinsics.

Frames (all right-handed):
- body: x forward, y left, z up (Spot's `body` frame).
- camera (`frame_name`, the optical frame served as `frame_name_image_sensor`): x = image
  columns (right in the raw image), y = image rows (down in the raw image), z = optical axis.

Each camera is built as an "upright" camera looking along `yaw_deg` (0 = body forward,
positive = to the left) and pitched down by `pitch_down_deg`, whose image x axis is level;
the sensor is then rolled about the optical axis by `upright_rotation_deg` reversed. So the raw
image needs exactly `ndimage.rotate(image, upright_rotation_deg)` (counter-clockwise positive
on screen, as the SDK examples do) to show the world upright:

- frontleft / frontright are mounted sideways (raw image rows run vertically in the world), as on
  the real robot: -78 and -102 degrees. They are cross-eyed like Spot's front stereo pair: the
  left-mounted camera looks to the right and vice versa, together covering the front.
- right is mounted upside down (180), left and back upright (0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from bosdyn.client.math_helpers import Quat, SE3Pose

from perception.frame import PinholeIntrinsics

IMAGE_WIDTH = 640
IMAGE_HEIGHT = 480
FOCAL_PX = 280.0  # about 98 x 81 degrees field of view for 640 x 480: wide, like the rectified fisheyes


@dataclass(frozen=True)
class CameraSpec:
    """One simulated camera: what the image service serves and where the camera sits on the body."""

    name: str  # image source name, e.g. "frontleft_fisheye_image"
    frame_name: str  # optical frame name, e.g. "frontleft_fisheye"
    body_tform_camera: SE3Pose  # optical frame (x right, y down, z forward) in the body frame
    depth_source_name: str  # e.g. "frontleft_depth_in_visual_frame" (same pixels and intrinsics)
    upright_rotation_deg: float  # ndimage.rotate(image, this) shows the raw image upright
    width: int = IMAGE_WIDTH
    height: int = IMAGE_HEIGHT
    fx: float = FOCAL_PX
    fy: float = FOCAL_PX
    cx: float = (IMAGE_WIDTH - 1) / 2.0  # pixel centres at integer coordinates (OpenCV)
    cy: float = (IMAGE_HEIGHT - 1) / 2.0

    @property
    def intrinsics(self) -> PinholeIntrinsics:
        return PinholeIntrinsics(fx=self.fx, fy=self.fy, cx=self.cx, cy=self.cy)

    def camera_matrix(self) -> np.ndarray:
        return self.intrinsics.camera_matrix()


def body_R_camera(yaw_deg: float, pitch_down_deg: float, upright_rotation_deg: float) -> np.ndarray:
    """Rotation (columns = camera x, y, z axes in body) of a camera looking along yaw/pitch.

    The sensor is rolled by -upright_rotation_deg about the optical axis relative to a level
    camera, so that rotating the raw image by +upright_rotation_deg (counter-clockwise on screen)
    undoes it.
    """
    yaw, pitch = math.radians(yaw_deg), math.radians(pitch_down_deg)
    forward = np.array([math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), -math.sin(pitch)])
    level_right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    level_down = np.cross(forward, level_right)
    # World-up seen in the raw image must point `roll` counter-clockwise from the image's up, so
    # that a clockwise screen rotation by `roll` (= rotate by upright_rotation_deg) makes it upright.
    roll = math.radians(-upright_rotation_deg)
    x_axis = math.cos(roll) * level_right + math.sin(roll) * level_down
    y_axis = -math.sin(roll) * level_right + math.cos(roll) * level_down
    return np.column_stack([x_axis, y_axis, forward])


def _mount(
    xyz: tuple[float, float, float], yaw_deg: float, pitch_down_deg: float, upright_rotation_deg: float
) -> SE3Pose:
    rot = Quat.from_matrix(body_R_camera(yaw_deg, pitch_down_deg, upright_rotation_deg))
    return SE3Pose(xyz[0], xyz[1], xyz[2], rot)


def _spec(
    prefix: str,
    xyz: tuple[float, float, float],
    yaw_deg: float,
    pitch_down_deg: float,
    upright_rotation_deg: float,
) -> CameraSpec:
    return CameraSpec(
        name=f"{prefix}_fisheye_image",
        frame_name=f"{prefix}_fisheye",
        body_tform_camera=_mount(xyz, yaw_deg, pitch_down_deg, upright_rotation_deg),
        depth_source_name=f"{prefix}_depth_in_visual_frame",
        upright_rotation_deg=upright_rotation_deg,
    )


# Mounting poses approximate a real Spot: the stereo pair sits on the nose, pitched down so the
# ground ahead and a tag board 0.3-0.6 m high at 1-4 m are in view, and a standing person
# 1.75 m tall is seen whole from about 2.5 m (legs and torso closer). The pitch and the
# focal length were chosen together by measuring the default detector on rendered people and
# stop signs at 2-3.5 m (tests/sim/test_render.py checks it).
FRONT_PITCH_DOWN_DEG = 15.0
FRONT_CROSS_YAW_DEG = 15.0
SIDE_PITCH_DOWN_DEG = 20.0

CAMERAS: dict[str, CameraSpec] = {
    spec.name: spec
    for spec in (
        # Mounted on the left of the nose, looking front-right.
        _spec("frontleft", (0.415, 0.037, -0.015), -FRONT_CROSS_YAW_DEG, FRONT_PITCH_DOWN_DEG, -78.0),
        # Mounted on the right of the nose, looking front-left.
        _spec("frontright", (0.415, -0.037, -0.015), FRONT_CROSS_YAW_DEG, FRONT_PITCH_DOWN_DEG, -102.0),
        _spec("left", (-0.05, 0.11, 0.0), 90.0, SIDE_PITCH_DOWN_DEG, 0.0),
        _spec("right", (-0.05, -0.11, 0.0), -90.0, SIDE_PITCH_DOWN_DEG, 180.0),
        _spec("back", (-0.425, 0.0, 0.01), 180.0, SIDE_PITCH_DOWN_DEG, 0.0),
    )
}
