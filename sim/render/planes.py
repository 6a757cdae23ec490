"""The scenario's objects as textured planar quads in the camera frame, ready to paint.

An AprilTag board or a stop sign is a board on a thin post (seen from behind: the board's
outline in a plain grey, with the post in front of it); a person is an upright billboard turned
to face the camera, with a soft contact shadow on the floor; a box is its faces turned to the
camera, shaded by a fixed light; a wall is one textured face. Every part of one object shares the
object's distance, and the list comes sorted far to near: the painter's order the compositor
uses, and the order the tag-occlusion test relies on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.render.people import appearance_aspect, appearance_texture
from sim.render.projection import to_camera
from sim.render.surfaces import tile_for
from sim.render.textures import Texture, shadow_texture, stop_sign_texture, tag_board_scale, tag_texture
from sim.scene import AprilTagObject, BoxObject, PersonObject, Scenario, StopSignObject, WallObject

POST_GREY = 95
BOARD_BACK_GREY = 200
SIGN_BACK_GREY = 150
POST_WIDTH_M = 0.04


@dataclass
class Plane:
    """A textured (or plain) planar quad in the camera frame, ready to paint."""

    corners: np.ndarray  # 4 x 3 camera-frame points: texture top-left, top-right, bottom-right, bottom-left
    texture: Texture | None  # None: plain `grey` quad
    grey: int = 0  # plain colour, or the colour of a texture's back face when `back` is set
    back: bool = False  # seen from behind: paint the texture's shape in `grey`
    distance: float = 0.0  # painter's order key (metres from the camera)
    object_index: int = -1  # which scenario object it belongs to
    solid: bool = True  # False for shadows: painted, but hide nothing and give no depth
    category: str | None = None  # what a labelled dataset calls it ("person", "stop sign"); None: no label

    def texel_homography(self, texture: Texture, k: np.ndarray) -> np.ndarray:
        """Homography from level-0 texel (column, row) to image pixels (texel centres)."""
        c = self.corners
        du = (c[1] - c[0]) / texture.width  # camera-frame step per level-0 texel, across
        dv = (c[3] - c[0]) / texture.height  # and down
        return k @ np.column_stack([du, dv, c[0] + 0.5 * du + 0.5 * dv])


def _upright_quad(centre: np.ndarray, right: np.ndarray, width: float, top: float, bottom: float) -> np.ndarray:
    """Corners (TL, TR, BR, BL) of a vertical rectangle; `top`/`bottom` are heights above the floor."""
    half = 0.5 * width * right
    up = np.array([0.0, 0.0, 1.0])
    base = np.array([centre[0], centre[1], 0.0])
    return np.array(
        [base - half + top * up, base + half + top * up, base + half + bottom * up, base - half + bottom * up]
    )


def _person_parts(person: PersonObject, centre: np.ndarray, yaw: float, origin: np.ndarray) -> list[Plane]:
    """Contact shadow, then the person's photo turned to face the camera (about the vertical axis)."""
    to_cam = origin[:2] - centre[:2]
    norm = float(np.hypot(*to_cam))
    face = to_cam / norm if norm > 1e-6 else np.array([math.cos(yaw), math.sin(yaw)])
    right = np.array([-face[1], face[0], 0.0])
    width = person.height_m * appearance_aspect(person.appearance)
    corners = _upright_quad(centre, right, width, person.height_m, 0.0)
    # A soft contact shadow on the floor under the feet, painted just before the person.
    half_w, half_d = 0.45 * width, 0.25
    along = np.array([face[0], face[1], 0.0])
    lift = np.array([0.0, 0.0, 0.002])
    shadow = np.array([
        centre - half_w * right + half_d * along + lift,
        centre + half_w * right + half_d * along + lift,
        centre + half_w * right - half_d * along + lift,
        centre - half_w * right - half_d * along + lift,
    ])
    body = Plane(corners, appearance_texture(person.appearance), category="person")
    return [Plane(shadow, shadow_texture(), solid=False), body]


def _board_on_post(
    obj: AprilTagObject | StopSignObject, centre: np.ndarray, yaw: float, origin: np.ndarray
) -> list[Plane]:
    """A square board (tag or sign) centred `pose.z` above the floor on a post, facing `yaw`."""
    face3 = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    right = np.array([-face3[1], face3[0], 0.0])  # the reader's right, = tag frame x
    z = obj.pose.z
    facing = float(np.dot(origin - np.array([centre[0], centre[1], z]), face3)) > 0.0
    if isinstance(obj, AprilTagObject):
        side, texture, back_grey = obj.size_m * tag_board_scale(), tag_texture(obj.tag_id), BOARD_BACK_GREY
    else:
        side, texture, back_grey = obj.size_m, stop_sign_texture(), SIGN_BACK_GREY
    board = _upright_quad(centre, right, side, z + side / 2, z - side / 2)
    post = _upright_quad(centre - 0.01 * face3, right, POST_WIDTH_M, z, 0.0)
    category = "stop sign" if isinstance(obj, StopSignObject) else None  # tags: `visible_tags`
    board_plane = Plane(board, texture, grey=back_grey, back=not facing, category=category)
    parts = [Plane(post, None, grey=POST_GREY), board_plane]
    if not facing:
        parts.reverse()  # seen from behind, the post is in front of the board
    return parts


# Light for shading box faces: from above and the +x/+y side, so adjacent faces differ.
_LIGHT = np.array([0.45, 0.3, 0.84])


def _shade(normal: np.ndarray) -> float:
    return round(0.7 + 0.3 * float(np.clip(normal @ _LIGHT, 0.0, 1.0)), 2)


def _box_faces(box: BoxObject, centre: np.ndarray, yaw: float, origin: np.ndarray) -> list[Plane]:
    """The faces of a box that face the camera (a convex box: they never overlap each other)."""
    along = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    across = np.array([-along[1], along[0], 0.0])
    faces: list[Plane] = []
    for normal, half_depth, width in (
        (along, box.length_m / 2, box.width_m), (-along, box.length_m / 2, box.width_m),
        (across, box.width_m / 2, box.length_m), (-across, box.width_m / 2, box.length_m),
    ):  # fmt: skip
        face_centre = centre + half_depth * normal
        if float((origin - face_centre) @ normal) <= 0.0:
            continue
        right = np.array([-normal[1], normal[0], 0.0])
        corners = _upright_quad(face_centre, right, width, box.height_m, 0.0)
        faces.append(Plane(corners, tile_for(box.surface, width, box.height_m, _shade(normal))))
    if origin[2] > box.height_m:
        top = centre + np.array([0.0, 0.0, box.height_m])
        a, b = 0.5 * box.length_m * along, 0.5 * box.width_m * across
        corners = np.array([top - a + b, top + a + b, top + a - b, top - a - b])
        faces.append(Plane(corners, tile_for(box.surface, box.length_m, box.width_m, _shade(np.array([0.0, 0.0, 1.0])))))
    return faces


def _wall(wall: WallObject, origin: np.ndarray) -> list[Plane]:
    """One textured face, turned to whichever side the camera is on."""
    start = np.array([wall.start.x, wall.start.y, 0.0])
    end = np.array([wall.end.x, wall.end.y, 0.0])
    right = (end - start) / float(np.linalg.norm(end - start))
    normal = np.array([-right[1], right[0], 0.0])
    if float((origin - start) @ normal) < 0.0:
        right = -right
    length = float(np.linalg.norm(end - start))
    corners = _upright_quad((start + end) / 2, right, length, wall.height_m, 0.0)
    return [Plane(corners, tile_for(wall.surface, length, wall.height_m, 1.0))]


def _object_parts(obj: object, centre: np.ndarray, yaw: float, origin: np.ndarray) -> list[Plane]:
    if isinstance(obj, PersonObject):
        return _person_parts(obj, centre, yaw, origin)
    if isinstance(obj, (AprilTagObject, StopSignObject)):
        return _board_on_post(obj, centre, yaw, origin)
    if isinstance(obj, BoxObject):
        return _box_faces(obj, centre, yaw, origin)
    if isinstance(obj, WallObject):
        return _wall(obj, origin)
    raise TypeError(f"no planes for {type(obj).__name__}")  # pragma: no cover - the union is closed


def _paint_distance(obj: object, x: float, y: float, origin: np.ndarray) -> float:
    """Painter's key: an object's distance; a wall's farthest end (walls are backgrounds)."""
    if isinstance(obj, WallObject):
        ends = np.array([[obj.start.x, obj.start.y, 0.0], [obj.end.x, obj.end.y, 0.0]])
        return float(np.linalg.norm(ends - origin, axis=1).max())
    return float(np.linalg.norm(np.array([x, y, 0.0]) - origin))


def scene_planes(scenario: Scenario, t: float, rot: np.ndarray, origin: np.ndarray) -> list[Plane]:
    """All object planes in the camera frame, in painting order (far to near)."""
    planes: list[Plane] = []
    for index, obj in enumerate(scenario.objects):
        x, y, yaw = obj.pose_at(t)
        parts = _object_parts(obj, np.array([x, y, 0.0]), yaw, origin)
        # Parts of one object share its distance; the stable sort keeps their order.
        distance = _paint_distance(obj, x, y, origin)
        for part in parts:
            part.corners = to_camera(part.corners, rot, origin)
            part.distance = distance
            part.object_index = index
            planes.append(part)
    planes.sort(key=lambda p: -p.distance)
    return planes
