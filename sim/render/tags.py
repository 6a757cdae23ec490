"""Which AprilTags one camera can see, with their poses and image corners.

A tag is reported when its four black-square corners are in the image, in front of the camera,
it faces the camera (within `TAG_MAX_VIEW_ANGLE_DEG`), its edges are long enough to decode and
no nearer object covers its centre. Its `odom_tform_tag` uses the convention of Spot's
`fiducial_<id>` frames and of OpenCV's aruco pose estimation (see `sim.scene`): origin at the tag
centre, z out of the printed face, x to the reader's right, y up. Computed from the geometry
(not by detecting the rendered image), so the world-object service reports what a perfect
detector would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from bosdyn.client.math_helpers import SE3Pose

from sim.cameras import CameraSpec
from sim.render.planes import Plane, scene_planes
from sim.render.projection import NEAR_M, camera_rt, clip_polygon, odom_tform_camera, project, to_camera
from sim.scene import AprilTagObject, Scenario

TAG_MIN_EDGE_PX = 12.0  # smaller tags are not reported (OpenCV decodes 36h11 down to about 11 px)
TAG_MAX_VIEW_ANGLE_DEG = 75.0


@dataclass(frozen=True)
class TagView:
    """An AprilTag one camera can see."""

    tag_id: int
    size_m: float  # black-square edge (OpenCV marker length)
    odom_tform_tag: SE3Pose  # z out of the face, x to the reader's right, y up
    camera_tform_tag: SE3Pose  # same tag frame in the camera's optical frame
    corners_px: np.ndarray  # 4 x 2, OpenCV aruco order: top-left, top-right, bottom-right, bottom-left
    distance_m: float


def _tag_corners_in_tag(size_m: float) -> np.ndarray:
    """Black-square corners in the tag frame, OpenCV aruco order (TL, TR, BR, BL; x right, y up)."""
    h = size_m / 2.0
    return np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]])


def _covers(plane: Plane, uv: np.ndarray, k: np.ndarray) -> bool:
    """Does `plane` paint over image point `uv` (inside its outline and opaque there)?"""
    c = plane.corners
    if np.any(c[:, 2] <= NEAR_M):
        c_poly = clip_polygon(c, NEAR_M - c[:, 2])
        if len(c_poly) < 3:
            return False
    else:
        c_poly = c
    outline = project(c_poly, k).astype(np.float32)
    if cv2.pointPolygonTest(outline, (float(uv[0]), float(uv[1])), False) < 0:
        return False
    tex = plane.texture
    if tex is None or tex.alpha is None:
        return True
    # Texel under the point: invert the plane's texture homography.
    s, tt, w = np.linalg.solve(plane.texel_homography(tex, k), np.array([uv[0], uv[1], 1.0]))
    col, row = int(round(s / w)), int(round(tt / w))
    if not (0 <= row < tex.height and 0 <= col < tex.width):
        return False
    return bool(tex.alpha[0][row, col] >= 128)


def _corners_if_decodable(
    camera: CameraSpec, corners_odom: np.ndarray, rot: np.ndarray, origin: np.ndarray, k: np.ndarray
) -> np.ndarray | None:
    """The corners in pixels when all are in front, inside the image and far enough apart."""
    corners_cam = to_camera(corners_odom, rot, origin)
    if np.any(corners_cam[:, 2] <= NEAR_M):
        return None
    corners_px = project(corners_cam, k)
    inside = (corners_px >= 1.0) & (corners_px <= np.array([camera.width - 2.0, camera.height - 2.0]))
    if not np.all(inside):
        return None
    edges = np.linalg.norm(corners_px - np.roll(corners_px, -1, axis=0), axis=1)
    if edges.min() < TAG_MIN_EDGE_PX:
        return None
    return corners_px


def visible_tags(camera: CameraSpec, odom_tform_body: SE3Pose, scenario: Scenario, t: float) -> list[TagView]:
    """AprilTags this camera can see (fully in the image, facing it, decodable size, not occluded)."""
    rot, origin = camera_rt(camera, odom_tform_body)
    k = camera.camera_matrix()
    cam_tform_odom = odom_tform_camera(camera, odom_tform_body).inverse()
    planes: list[Plane] | None = None
    views: list[TagView] = []
    cos_limit = math.cos(math.radians(TAG_MAX_VIEW_ANGLE_DEG))
    for index, tag in enumerate(scenario.objects):
        if not isinstance(tag, AprilTagObject):
            continue
        odom_tform_tag = tag.odom_tform_tag(t)
        tag_mat = odom_tform_tag.to_matrix()
        centre = tag_mat[:3, 3]
        to_cam = origin - centre
        distance = float(np.linalg.norm(to_cam))
        if distance < 1e-6 or float(tag_mat[:3, 2] @ to_cam) / distance < cos_limit:
            continue  # seen edge-on or from behind
        corners_odom = _tag_corners_in_tag(tag.size_m) @ tag_mat[:3, :3].T + centre
        corners_px = _corners_if_decodable(camera, corners_odom, rot, origin, k)
        if corners_px is None:
            continue
        if planes is None:
            planes = scene_planes(scenario, t, rot, origin)
        centre_px = project(to_camera(centre[None, :], rot, origin), k)[0]
        own = next(p.distance for p in planes if p.object_index == index)
        nearer = [p for p in planes if p.solid and p.object_index != index and p.distance < own]
        if any(_covers(p, centre_px, k) for p in nearer):
            continue
        views.append(
            TagView(
                tag_id=tag.tag_id,
                size_m=tag.size_m,
                odom_tform_tag=odom_tform_tag,
                camera_tform_tag=cam_tform_odom * odom_tform_tag,
                corners_px=corners_px,
                distance_m=distance,
            )
        )
    return views
