"""The grey image and depth buffer of one camera, and how an object's plane is painted into them.

A plane is clipped at the near plane, projected, and warped into the image with an OpenCV
homography restricted to its pixel box, at the texture mip level that gives about one texel per
pixel (minification only: crisp, with little aliasing). Cut-out textures (people, stop signs)
blend by their alpha; depth is the exact ray-plane distance per pixel, written where the
object is opaque (alpha >= 128), so shadows and soft edges give no depth return.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from sim.cameras import CameraSpec
from sim.render.planes import Plane
from sim.render.projection import NEAR_M, blend, clip_polygon, fill, project, roi, shift
from sim.render.textures import Texture

DEPTH_MAX_RANGE_M = 10.0  # farther surfaces give no depth return (0), like a stereo camera
BACKDROP_GREY = 205  # bright overcast sky: persons stand out (measured with the default detector)
MIP_BIAS = 1  # pick one mip level sharper than one texel per pixel (crisper, little aliasing)


class Canvas:
    """Grey image and/or depth being painted for one camera."""

    def __init__(
        self, camera: CameraSpec, want_grey: bool, want_depth: bool, backdrop: int = BACKDROP_GREY,
        want_labels: bool = False,
    ) -> None:
        self.camera = camera
        self.k = camera.camera_matrix()
        self.grey = np.full((camera.height, camera.width), backdrop, np.uint8) if want_grey else None
        self.depth = np.zeros((camera.height, camera.width), np.float32) if want_depth else None
        # Which painted plane each pixel shows (-1: none): the ground truth of `sim.dataset`.
        self.labels = np.full((camera.height, camera.width), -1, np.int32) if want_labels else None

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

    def paint_plane(self, plane: Plane, label: int = -1) -> None:
        """Paint one plane; with a labels buffer, `label` goes where it is opaque and solid."""
        poly = clip_polygon(plane.corners, NEAR_M - plane.corners[:, 2])
        if len(poly) < 3:
            return
        uv = project(poly, self.k)
        box = roi(uv, self.camera)
        if box is None:
            return
        x0, y0, x1, y1 = box
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        fill(mask, uv, (x0, y0), 255)
        tex = plane.texture
        if tex is None:
            if self.grey is not None:
                self.grey[y0:y1, x0:x1][mask > 0] = plane.grey
        elif tex.alpha is not None or self.grey is not None:
            mask = self._paint_texture(plane, tex, box, mask)
        if self.labels is not None and plane.solid:
            self.labels[y0:y1, x0:x1][mask > 0] = label
        if self.depth is not None and plane.solid:
            c = plane.corners
            normal = np.cross(c[1] - c[0], c[3] - c[0])
            normal /= np.linalg.norm(normal)
            z = self.plane_depth(normal, float(normal @ c[0]), box)
            roi_depth = self.depth[y0:y1, x0:x1]
            roi_depth[mask > 0] = z[mask > 0]

    def _paint_texture(
        self, plane: Plane, tex: Texture, box: tuple[int, int, int, int], mask: np.ndarray
    ) -> np.ndarray:
        """Paint a textured plane inside `mask`; returns where it is opaque (for depth)."""
        x0, y0, x1, y1 = box
        size = (x1 - x0, y1 - y0)
        level, h_roi = self._texture_homography(plane, tex, (x0, y0))
        coverage = None
        if tex.alpha is not None:
            alpha = cv2.warpPerspective(
                tex.alpha[level], h_roi, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
            )
            coverage = cv2.min(alpha, mask)  # soft cut-out edges, inside the clipped outline
            mask = np.where(coverage >= 128, np.uint8(255), np.uint8(0))  # for depth
        if self.grey is not None:
            image_roi = self.grey[y0:y1, x0:x1]
            if plane.back:
                warped = np.full(mask.shape, plane.grey, np.uint8)
            else:
                warped = cv2.warpPerspective(
                    tex.grey[level], h_roi, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
                )
            if coverage is None:
                cv2.copyTo(warped, mask, image_roi)
            else:
                blend(image_roi, warped, coverage)
        return mask

    def _texture_homography(self, plane: Plane, tex: Texture, offset: tuple[int, int]) -> tuple[int, np.ndarray]:
        """(mip level, homography from that level's pixels to the ROI's pixels)."""
        c = plane.corners
        h = plane.texel_homography(tex, self.k)
        level = 0
        if np.all(c[:, 2] > NEAR_M):
            # Pick the mip level with about one texel per pixel (minification only).
            uv = project(c, self.k)
            span_px = max(float(np.linalg.norm(uv[1] - uv[0])), float(np.linalg.norm(uv[2] - uv[3])), 1.0)
            ratio = tex.width / span_px
            level = int(min(len(tex.grey) - 1, max(0, math.floor(math.log2(max(ratio, 1.0))) - MIP_BIAS)))
        if level:
            # cv2.pyrDown centres texel i of level L on texel 2**L * i of level 0.
            h = h @ np.diag([2.0**level, 2.0**level, 1.0])
        return level, shift(*offset) @ h
