"""Render what a simulated camera sees: grey image, depth, and which AprilTags are in view.

Pinhole geometry throughout (the served intrinsics are exactly the ones used here). The world is
a textured floor (z = 0 in odom, coarser texture levels with distance), a plain bright backdrop
above the horizon, and planar objects: AprilTag boards and stop signs on posts, and people as
upright billboards turned to face the camera. Every plane is clipped against the near plane in camera space
before projection (no wrap-around from points behind the camera), warped into the image with
an OpenCV homography restricted to its bounding box, and painted far to near.

`visible_tags` reports tags whose four black-square corners are in the image, in front of the
camera, facing it, large enough to decode and not hidden behind a nearer object. Their
`odom_tform_tag` uses the convention of Spot's `fiducial_<id>` frames and of OpenCV's aruco
pose estimation (see `sim.scene`): origin at the tag centre, z out of the printed face, x to
the reader's right, y up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from bosdyn.client.math_helpers import SE3Pose

from sim import textures
from sim.cameras import CameraSpec
from sim.scene import AprilTagObject, PersonObject, Scenario, StopSignObject

NEAR_M = 0.05  # near clipping plane (camera z)
# Floor texture mip level by camera depth: (band's far edge in metres, pyramid level). Beyond the
# last band the floor is its mean grey up to the horizon; the backdrop is above the horizon.
FLOOR_BANDS: tuple[tuple[float, int], ...] = ((2.5, 0), (4.0, 1), (6.5, 2), (10.0, 3))
DEPTH_MAX_RANGE_M = 10.0  # farther surfaces give no depth return (0), like a stereo camera
BACKDROP_GREY = 205  # bright overcast sky: persons stand out (measured with the default detector)
POST_GREY = 95
BOARD_BACK_GREY = 200
SIGN_BACK_GREY = 150
POST_WIDTH_M = 0.04
TAG_MIN_EDGE_PX = 12.0  # smaller tags are not reported (OpenCV decodes 36h11 down to about 11 px)
TAG_MAX_VIEW_ANGLE_DEG = 75.0
MIP_BIAS = 1  # pick one mip level sharper than one texel per pixel (crisper, little aliasing)
_SUBPIXEL_SHIFT = 4  # fillPoly vertices with 4 fractional bits


@dataclass(frozen=True)
class TagView:
    """An AprilTag one camera can see."""

    tag_id: int
    size_m: float  # black-square edge (OpenCV marker length)
    odom_tform_tag: SE3Pose  # z out of the face, x to the reader's right, y up
    camera_tform_tag: SE3Pose  # same tag frame in the camera's optical frame
    corners_px: np.ndarray  # 4 x 2, OpenCV aruco order: top-left, top-right, bottom-right, bottom-left
    distance_m: float


@dataclass
class _Plane:
    """A textured (or plain) planar quad in the camera frame, ready to paint."""

    corners: np.ndarray  # 4 x 3 camera-frame points: texture top-left, top-right, bottom-right, bottom-left
    texture: textures.Texture | None  # None: plain `grey` quad
    grey: int = 0  # plain colour, or the colour of a texture's back face when `back` is set
    back: bool = False  # seen from behind: paint the texture's shape in `grey`
    distance: float = 0.0  # painter's order key (metres from the camera)
    object_index: int = -1  # which scenario object it belongs to
    solid: bool = True  # False for shadows: painted, but hide nothing and give no depth


# --- Camera pose -----------------------------------------------------------------------------


def odom_tform_camera(camera: CameraSpec, odom_tform_body: SE3Pose) -> SE3Pose:
    return odom_tform_body * camera.body_tform_camera


def _camera_rt(camera: CameraSpec, odom_tform_body: SE3Pose) -> tuple[np.ndarray, np.ndarray]:
    """(odom_R_camera 3x3, camera origin in odom)."""
    mat = odom_tform_camera(camera, odom_tform_body).to_matrix()
    return mat[:3, :3], mat[:3, 3]


def _to_camera(points_odom: np.ndarray, rot: np.ndarray, origin: np.ndarray) -> np.ndarray:
    return (points_odom - origin) @ rot


# --- Scene to planes ---------------------------------------------------------------------------


def _upright_quad(centre: np.ndarray, right: np.ndarray, width: float, top: float, bottom: float) -> np.ndarray:
    """Corners (TL, TR, BR, BL) of a vertical rectangle; `top`/`bottom` are heights above the floor."""
    half = 0.5 * width * right
    up = np.array([0.0, 0.0, 1.0])
    base = np.array([centre[0], centre[1], 0.0])
    return np.array(
        [base - half + top * up, base + half + top * up, base + half + bottom * up, base - half + bottom * up]
    )


def _scene_planes(scenario: Scenario, t: float, rot: np.ndarray, origin: np.ndarray) -> list[_Plane]:
    """All object planes in the camera frame, in painting order (far to near)."""
    planes: list[_Plane] = []
    for index, obj in enumerate(scenario.objects):
        x, y, yaw = obj.pose_at(t)
        centre = np.array([x, y, 0.0])
        if isinstance(obj, PersonObject):
            # Billboard: turn the photo to face the camera (about the vertical axis).
            to_camera = origin[:2] - centre[:2]
            norm = float(np.hypot(*to_camera))
            face = to_camera / norm if norm > 1e-6 else np.array([math.cos(yaw), math.sin(yaw)])
            right = np.array([-face[1], face[0], 0.0])
            width = obj.height_m * textures.person_aspect()
            corners = _upright_quad(centre, right, width, obj.height_m, 0.0)
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
            parts = [
                _Plane(shadow, textures.shadow_texture(), solid=False),
                _Plane(corners, textures.person_texture()),
            ]
            face3 = np.array([face[0], face[1], 0.0])
        else:
            face3 = np.array([math.cos(yaw), math.sin(yaw), 0.0])
            right = np.array([-face3[1], face3[0], 0.0])  # the reader's right, = tag frame x
            z = obj.pose.z
            facing = float(np.dot(origin - np.array([x, y, z]), face3)) > 0.0
            if isinstance(obj, AprilTagObject):
                side = obj.size_m * textures.tag_board_scale()
                board = _upright_quad(centre, right, side, z + side / 2, z - side / 2)
                post = _upright_quad(centre - 0.01 * face3, right, POST_WIDTH_M, z, 0.0)
                parts = [
                    _Plane(post, None, grey=POST_GREY),
                    _Plane(board, textures.tag_texture(obj.tag_id), grey=BOARD_BACK_GREY, back=not facing),
                ]
                if not facing:
                    parts.reverse()  # seen from behind, the post is in front of the board
            elif isinstance(obj, StopSignObject):
                sign = _upright_quad(centre, right, obj.size_m, z + obj.size_m / 2, z - obj.size_m / 2)
                post = _upright_quad(centre - 0.01 * face3, right, POST_WIDTH_M, z, 0.0)
                parts = [
                    _Plane(post, None, grey=POST_GREY),
                    _Plane(sign, textures.stop_sign_texture(), grey=SIGN_BACK_GREY, back=not facing),
                ]
                if not facing:
                    parts.reverse()
            else:  # pragma: no cover - the Scenario union has no other types
                continue
        # Parts of one object share its distance; the stable sort keeps their order.
        distance = float(np.linalg.norm(np.array([x, y, 0.0]) - origin))
        for part in parts:
            part.corners = _to_camera(part.corners, rot, origin)
            part.distance = distance
            part.object_index = index
            planes.append(part)
    planes.sort(key=lambda p: -p.distance)
    return planes


# --- Polygon helpers ---------------------------------------------------------------------------


def _clip_polygon(points: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman against one half-space: keep where `values` (linear in the points) <= 0."""
    out: list[np.ndarray] = []
    n = len(points)
    for i in range(n):
        p, q = points[i], points[(i + 1) % n]
        vp, vq = values[i], values[(i + 1) % n]
        if vp <= 0.0:
            out.append(p)
        if (vp <= 0.0) != (vq <= 0.0):
            out.append(p + (q - p) * (vp / (vp - vq)))
    return np.array(out) if out else np.zeros((0, points.shape[1]))


def _project(points_cam: np.ndarray, k: np.ndarray) -> np.ndarray:
    proj = points_cam @ k.T
    return proj[:, :2] / proj[:, 2:3]


def _image_rect(camera: CameraSpec) -> np.ndarray:
    w, h = camera.width, camera.height
    return np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])


def _roi(uv: np.ndarray, camera: CameraSpec) -> tuple[int, int, int, int] | None:
    """Integer pixel box (x0, y0, x1, y1) exclusive, covering `uv`, clipped to the image."""
    x0 = max(0, int(math.floor(uv[:, 0].min())))
    y0 = max(0, int(math.floor(uv[:, 1].min())))
    x1 = min(camera.width, int(math.ceil(uv[:, 0].max())) + 1)
    y1 = min(camera.height, int(math.ceil(uv[:, 1].max())) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def _shift(x0: int, y0: int) -> np.ndarray:
    """Homography moving image pixels into a box whose top-left is (x0, y0)."""
    return np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]])


def _fill(mask: np.ndarray, uv: np.ndarray, offset: tuple[int, int], value: int) -> None:
    # Clamp so fixed-point coordinates stay in int32 even for vertices right at the near plane.
    pts = np.clip(uv - np.array(offset, dtype=float), -1e5, 1e5)
    fixed = np.round(pts * (1 << _SUBPIXEL_SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [fixed], value, lineType=cv2.LINE_8, shift=_SUBPIXEL_SHIFT)


def _blend(dst: np.ndarray, src: np.ndarray, coverage: np.ndarray) -> None:
    """dst = src over dst with 0..255 coverage, in place (uint8)."""
    cov = coverage.astype(np.uint16)
    mixed = (src.astype(np.uint16) * cov + dst.astype(np.uint16) * (255 - cov) + 127) // 255
    dst[...] = mixed.astype(np.uint8)


# --- Painting ------------------------------------------------------------------------------------


class _Canvas:
    """Grey image and/or depth being painted for one camera."""

    def __init__(self, camera: CameraSpec, want_grey: bool, want_depth: bool) -> None:
        self.camera = camera
        self.k = camera.camera_matrix()
        self.grey = np.full((camera.height, camera.width), BACKDROP_GREY, np.uint8) if want_grey else None
        self.depth = np.zeros((camera.height, camera.width), np.float32) if want_depth else None

    def plane_depth(self, normal: np.ndarray, offset: float, box: tuple[int, int, int, int]) -> np.ndarray:
        """Camera z where each pixel ray in `box` meets the plane normal . p = offset (0: no return)."""
        cam = self.camera
        x0, y0, x1, y1 = box
        # normal . (z r) = offset with r = ((u-cx)/fx, (v-cy)/fy, 1): z = offset / (linear in u, v).
        us = np.arange(x0, x1, dtype=np.float32) - np.float32(cam.cx)
        vs = np.arange(y0, y1, dtype=np.float32) - np.float32(cam.cy)
        across = (float(normal[0]) / cam.fx) * us
        down = (float(normal[1]) / cam.fy) * vs + np.float32(normal[2])
        denom = down[:, None] + across[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.float32(offset) / denom
        z[~((z > 0.0) & (z <= DEPTH_MAX_RANGE_M))] = 0.0
        return z

    # Floor and backdrop.
    def paint_floor(self, rot: np.ndarray, origin: np.ndarray) -> None:
        cam = self.camera
        height = float(origin[2])
        if height <= 0.0:
            return  # camera at or below the floor: only backdrop
        # Camera-frame up is rot[2, :]. A pixel ray r = ((u-cx)/fx, (v-cy)/fy, 1) goes down when
        # f(u, v) = up . r < 0 and meets the floor at camera depth -height / f(u, v); f is linear.
        up = rot[2, :]
        a, b = float(up[0] / cam.fx), float(up[1] / cam.fy)
        c = float(up[2] - up[0] * cam.cx / cam.fx - up[1] * cam.cy / cam.fy)
        rect = _image_rect(cam)
        f_rect = rect @ np.array([a, b]) + c

        def band(near: float, far: float | None) -> np.ndarray:
            """Image polygon where the floor is between camera depths `near` and `far` (None: horizon)."""
            poly, values = rect, f_rect
            if far is not None:  # depth <= far  <=>  f <= -height / far
                poly = _clip_polygon(poly, values + height / far)
            else:
                poly = _clip_polygon(poly, values)
            if near > 0.0 and len(poly) >= 3:  # depth >= near  <=>  f >= -height / near
                poly = _clip_polygon(poly, -(poly @ np.array([a, b]) + c) - height / near)
            return poly

        if self.grey is not None:
            # floor (X, Y, 1) -> image: K R^T [e1, e2, -origin].
            floor_to_img = self.k @ rot.T @ np.column_stack([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], -origin])
            img_to_floor_dir = rot @ np.linalg.inv(self.k)  # pixel (u, v, 1) -> ray direction in odom
            pyramid = textures.floor_pyramid()
            near = 0.0
            # Coarser texture levels farther away (mip-mapping by distance bands: no moire), then
            # the floor's mean grey out to the horizon.
            for far, level in FLOOR_BANDS:
                poly = band(near, far)
                near = far
                box = _roi(poly, cam) if len(poly) >= 3 else None
                if box is None:
                    continue
                x0, y0, x1, y1 = box
                # Where on the floor this band is, to place the (periodic) texture over it.
                rays = np.column_stack([poly, np.ones(len(poly))]) @ img_to_floor_dir.T
                ground = origin[:2] + rays[:, :2] * (-height / np.minimum(rays[:, 2:3], -1e-9))
                period = textures.FLOOR_TILE_M
                corner = period * np.floor(ground.min(axis=0) / period)
                # Level-L texel i sits on level-0 texel 2**L * i, whose centre is (i + 0.5) / ppm.
                ppm = float(textures.FLOOR_PX_PER_M)
                step = 2.0**level / ppm
                texel_to_floor = np.array(
                    [[step, 0.0, corner[0] + 0.5 / ppm], [0.0, step, corner[1] + 0.5 / ppm], [0.0, 0.0, 1.0]]
                )
                fits = bool(np.all(ground.max(axis=0) - corner < textures.FLOOR_LEVEL_EXTENT_M[level]))
                warped = cv2.warpPerspective(
                    pyramid[level],
                    _shift(x0, y0) @ floor_to_img @ texel_to_floor,
                    (x1 - x0, y1 - y0),
                    flags=cv2.INTER_LINEAR,
                    # Pixels outside the band are masked off; inside, the tiled texture covers the band.
                    borderMode=cv2.BORDER_CONSTANT if fits else cv2.BORDER_WRAP,
                )
                mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
                _fill(mask, poly, (x0, y0), 255)
                cv2.copyTo(warped, mask, self.grey[y0:y1, x0:x1])
            poly = band(near, None)
            if len(poly) >= 3:
                _fill(self.grey, poly, (0, 0), textures.floor_mean_grey())
        if self.depth is not None:
            poly = band(0.0, DEPTH_MAX_RANGE_M)
            box = _roi(poly, cam) if len(poly) >= 3 else None
            if box is not None:
                x0, y0, x1, y1 = box
                # Floor plane in camera coordinates: up . p = -height.
                self.depth[y0:y1, x0:x1] = self.plane_depth(up, -height, box)

    # Objects.
    def paint_plane(self, plane: _Plane) -> None:
        cam = self.camera
        poly = _clip_polygon(plane.corners, NEAR_M - plane.corners[:, 2])
        if len(poly) < 3:
            return
        uv = _project(poly, self.k)
        box = _roi(uv, cam)
        if box is None:
            return
        x0, y0, x1, y1 = box
        size = (x1 - x0, y1 - y0)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        _fill(mask, uv, (x0, y0), 255)
        tex = plane.texture
        if tex is None:
            if self.grey is not None:
                self.grey[y0:y1, x0:x1][mask > 0] = plane.grey
        elif tex.alpha is not None or self.grey is not None:
            level, h_roi = self._texture_homography(plane, tex, (x0, y0))
            coverage = None
            if tex.alpha is not None:
                alpha = cv2.warpPerspective(
                    tex.alpha[level], h_roi, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
                )
                coverage = cv2.min(alpha, mask)  # soft cut-out edges, inside the clipped outline
                mask = np.where(coverage >= 128, np.uint8(255), np.uint8(0))  # for depth
            if self.grey is not None:
                roi = self.grey[y0:y1, x0:x1]
                if plane.back:
                    warped = np.full(mask.shape, plane.grey, np.uint8)
                else:
                    warped = cv2.warpPerspective(
                        tex.grey[level], h_roi, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
                    )
                if coverage is None:
                    cv2.copyTo(warped, mask, roi)
                else:
                    _blend(roi, warped, coverage)
        if self.depth is not None and plane.solid:
            c = plane.corners
            normal = np.cross(c[1] - c[0], c[3] - c[0])
            normal /= np.linalg.norm(normal)
            z = self.plane_depth(normal, float(normal @ c[0]), box)
            roi_depth = self.depth[y0:y1, x0:x1]
            roi_depth[mask > 0] = z[mask > 0]

    def _texture_homography(
        self, plane: _Plane, tex: textures.Texture, offset: tuple[int, int]
    ) -> tuple[int, np.ndarray]:
        """(mip level, homography from that level's pixels to the ROI's pixels)."""
        c = plane.corners
        du = (c[1] - c[0]) / tex.width  # camera-frame step per level-0 texel, across
        dv = (c[3] - c[0]) / tex.height  # and down
        p00 = c[0] + 0.5 * du + 0.5 * dv  # centre of texel (0, 0)
        h = self.k @ np.column_stack([du, dv, p00])
        level = 0
        if np.all(c[:, 2] > NEAR_M):
            # Pick the mip level with about one texel per pixel (minification only).
            uv = _project(c, self.k)
            span_px = max(float(np.linalg.norm(uv[1] - uv[0])), float(np.linalg.norm(uv[2] - uv[3])), 1.0)
            ratio = tex.width / span_px
            level = int(min(len(tex.grey) - 1, max(0, math.floor(math.log2(max(ratio, 1.0))) - MIP_BIAS)))
        if level:
            # cv2.pyrDown centres texel i of level L on texel 2**L * i of level 0.
            h = h @ np.diag([2.0**level, 2.0**level, 1.0])
        return level, _shift(*offset) @ h


def _render(
    camera: CameraSpec, odom_tform_body: SE3Pose, scenario: Scenario, t: float, want_grey: bool, want_depth: bool
) -> _Canvas:
    rot, origin = _camera_rt(camera, odom_tform_body)
    canvas = _Canvas(camera, want_grey, want_depth)
    canvas.paint_floor(rot, origin)
    for plane in _scene_planes(scenario, t, rot, origin):
        canvas.paint_plane(plane)
    return canvas


def render_grey(camera: CameraSpec, odom_tform_body: SE3Pose, scenario: Scenario, t: float) -> np.ndarray:
    """The camera's raw grey image (height x width uint8) as the robot sends it: the front pair sideways."""
    image = _render(camera, odom_tform_body, scenario, t, want_grey=True, want_depth=False).grey
    assert image is not None
    return image


def render_depth(camera: CameraSpec, odom_tform_body: SE3Pose, scenario: Scenario, t: float) -> np.ndarray:
    """Depth in the visual frame: camera z in metres (height x width float32), 0 = no return."""
    depth = _render(camera, odom_tform_body, scenario, t, want_grey=False, want_depth=True).depth
    assert depth is not None
    return depth


def render_grey_and_depth(
    camera: CameraSpec, odom_tform_body: SE3Pose, scenario: Scenario, t: float
) -> tuple[np.ndarray, np.ndarray]:
    """Both at once (shares the geometry work)."""
    canvas = _render(camera, odom_tform_body, scenario, t, want_grey=True, want_depth=True)
    assert canvas.grey is not None and canvas.depth is not None
    return canvas.grey, canvas.depth


# --- Fiducials ---------------------------------------------------------------------------------


def _tag_corners_in_tag(size_m: float) -> np.ndarray:
    """Black-square corners in the tag frame, OpenCV aruco order (TL, TR, BR, BL; x right, y up)."""
    h = size_m / 2.0
    return np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]])


def _covers(plane: _Plane, uv: np.ndarray, k: np.ndarray) -> bool:
    """Does `plane` paint over image point `uv` (inside its outline and opaque there)?"""
    c = plane.corners
    if np.any(c[:, 2] <= NEAR_M):
        c_poly = _clip_polygon(c, NEAR_M - c[:, 2])
        if len(c_poly) < 3:
            return False
    else:
        c_poly = c
    outline = _project(c_poly, k).astype(np.float32)
    if cv2.pointPolygonTest(outline, (float(uv[0]), float(uv[1])), False) < 0:
        return False
    tex = plane.texture
    if tex is None or tex.alpha is None:
        return True
    # Texel under the point: invert the plane's texture homography.
    du = (c[1] - c[0]) / tex.width
    dv = (c[3] - c[0]) / tex.height
    h = k @ np.column_stack([du, dv, c[0] + 0.5 * du + 0.5 * dv])
    s, tt, w = np.linalg.solve(h, np.array([uv[0], uv[1], 1.0]))
    col, row = int(round(s / w)), int(round(tt / w))
    if not (0 <= row < tex.height and 0 <= col < tex.width):
        return False
    return bool(tex.alpha[0][row, col] >= 128)


def visible_tags(camera: CameraSpec, odom_tform_body: SE3Pose, scenario: Scenario, t: float) -> list[TagView]:
    """AprilTags this camera can see (fully in the image, facing it, decodable size, not occluded)."""
    rot, origin = _camera_rt(camera, odom_tform_body)
    k = camera.camera_matrix()
    odom_tform_cam = odom_tform_camera(camera, odom_tform_body)
    cam_tform_odom = odom_tform_cam.inverse()
    planes: list[_Plane] | None = None
    views: list[TagView] = []
    cos_limit = math.cos(math.radians(TAG_MAX_VIEW_ANGLE_DEG))
    for index, tag in enumerate(scenario.objects):
        if not isinstance(tag, AprilTagObject):
            continue
        odom_tform_tag = tag.odom_tform_tag(t)
        tag_mat = odom_tform_tag.to_matrix()
        centre = tag_mat[:3, 3]
        to_camera = origin - centre
        distance = float(np.linalg.norm(to_camera))
        if distance < 1e-6 or float(tag_mat[:3, 2] @ to_camera) / distance < cos_limit:
            continue  # seen edge-on or from behind
        corners_odom = _tag_corners_in_tag(tag.size_m) @ tag_mat[:3, :3].T + centre
        corners_cam = _to_camera(corners_odom, rot, origin)
        if np.any(corners_cam[:, 2] <= NEAR_M):
            continue
        corners_px = _project(corners_cam, k)
        inside = (corners_px >= 1.0) & (corners_px <= np.array([camera.width - 2.0, camera.height - 2.0]))
        if not np.all(inside):
            continue
        edges = np.linalg.norm(corners_px - np.roll(corners_px, -1, axis=0), axis=1)
        if edges.min() < TAG_MIN_EDGE_PX:
            continue
        if planes is None:
            planes = _scene_planes(scenario, t, rot, origin)
        centre_px = _project(_to_camera(centre[None, :], rot, origin), k)[0]
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
