"""AprilTag 36h11 fiducials with OpenCV's aruco module, posed with solvePnP (IPPE_SQUARE).

Tags are found in the original (unrotated) image: the detector is rotation invariant, and the
pose needs the original image's intrinsics. The tag frame is OpenCV's IPPE_SQUARE one: origin at
the tag's centre, x to the tag's right, y up, z out of the printed face (towards a camera that
sees it), so `camera_R_tag[:, 2]` is the direction the tag faces.

Detection and accuracy, measured by `bench/bench_fiducials.py` on the sim's rendered front-camera
frames (0.146 and 0.2 m tags at 0.8-4 m, several yaws) and on tags warped into real photographs
(dim, low contrast, blurred, noisy, JPEG; 10-300 px, some at the frame edge):
- Thresholds: aruco's own three adaptive-threshold windows (3, 13, 23 px), so every tag OpenCV's
  default `ArucoDetector` finds is found. One 7-px window (cheaper) missed big low-contrast tags
  (a blurred 165 px tag needs ~13 px) and tiny ones (window 3). Contours too short to hold a
  decodable tag are dropped early. pupil-apriltags (AprilTag 3) was compared too: several times
  slower at full resolution, loses tiny tags when decimated, and has no arm64 wheels.
- Corners: at 3-4 m a tag is 10-15 px wide and its black border one or two pixels, so aruco's
  corner refinements either move corners onto the data bits (SUBPIX: rotations off by up to
  ~80 degrees; CONTOUR: ~15 at the 95th percentile) or lose far tags and cost 10x (APRILTAG).
  Instead each side's black-to-white edge is located to a fraction of a pixel along its normal
  and the corners are intersections of the fitted lines (as the AprilTag library's own edge
  refinement does): rotations ~0.3 degrees median, ~3 at the 95th percentile.
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from perception.detection import FiducialDetection
from perception.frame import PinholeIntrinsics

_NO_POSE_R = np.full((3, 3), np.nan)
_NO_POSE_T = np.full(3, np.nan)

# OpenCV's default adaptive-threshold windows (px): 3 for tags ~10 px wide, 13 and 23 for big,
# blurred or low-contrast ones, whose dark border is wider than a small window.
_THRESHOLD_WINDOWS_PX = (3, 23, 10)  # min, max, step
# Perimeter / image side below which a quad cannot hold a decodable 36h11 tag (8 px sides).
_MIN_PERIMETER_RATE = 0.05
# Edge refinement: how far (px) each side's edge is searched for along its normal, in steps of
# _EDGE_STEP_PX, with an intensity difference taken _EDGE_GRADIENT_PX either side.
_EDGE_SEARCH_PX = 1.5
_EDGE_STEP_PX = 0.25
_EDGE_GRADIENT_PX = 0.5


def tag_object_points(size_m: float) -> np.ndarray:
    """The 4 tag corners in the tag frame, in aruco's corner order (TL, TR, BR, BL as printed)."""
    h = size_m / 2.0
    return np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]], dtype=np.float64)


def detector_parameters() -> cv2.aruco.DetectorParameters:
    """aruco settings for finding tags fast; corners are refined by `refine_tag_corners`."""
    params = cv2.aruco.DetectorParameters()
    (params.adaptiveThreshWinSizeMin, params.adaptiveThreshWinSizeMax,
     params.adaptiveThreshWinSizeStep) = _THRESHOLD_WINDOWS_PX
    params.minMarkerPerimeterRate = _MIN_PERIMETER_RATE
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_NONE
    return params


def refine_tag_corners(grey: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Sub-pixel corners of a tag's dark square: its 4 sides fitted to the image's edges.

    Along each side, points spread over its length are moved along the outward normal to the
    gradient-weighted mean of the dark-to-light step there; a line is fitted through them and
    adjacent lines are intersected. Returns the input corners (float64, 4 x 2) where the edges
    cannot be fitted or the fit moves a corner implausibly far.
    """
    quad = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    centre = quad.mean(axis=0)
    offsets = np.arange(-_EDGE_SEARCH_PX, _EDGE_SEARCH_PX + 1e-9, _EDGE_STEP_PX)
    lines: list[tuple[np.ndarray, np.ndarray]] = []
    for i in range(4):
        a, b = quad[i], quad[(i + 1) % 4]
        side = b - a
        length = float(np.hypot(side[0], side[1]))
        if length < 1.0:
            return quad
        normal = np.array([side[1], -side[0]]) / length
        if normal @ ((a + b) / 2.0 - centre) < 0:
            normal = -normal  # outward: dark tag border inside, light margin outside
        count = max(8, int(length / 2))
        base = a + ((np.arange(count) + 1.0) / (count + 1))[:, None] * side
        along = base[:, None, :] + offsets[None, :, None] * normal  # count x offsets x 2
        samples = np.concatenate(
            [along + _EDGE_GRADIENT_PX * normal, along - _EDGE_GRADIENT_PX * normal], axis=1
        ).astype(np.float32)
        values = cv2.remap(
            grey, samples[..., 0], samples[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        ).astype(np.float64)
        step = values[:, : len(offsets)] - values[:, len(offsets) :]  # outside minus inside
        weight = np.where(step > 0, step * step, 0.0)  # only dark -> light steps
        total = weight.sum(axis=1)
        usable = total > 0
        if usable.sum() < 2:
            return quad
        shift = (weight[usable] * offsets).sum(axis=1) / total[usable]
        edge_points = (base[usable] + shift[:, None] * normal).astype(np.float32)
        vx, vy, x0, y0 = cv2.fitLine(edge_points, cv2.DIST_L2, 0, 0.01, 0.01).ravel()
        lines.append((np.array([x0, y0], dtype=np.float64), np.array([vx, vy], dtype=np.float64)))
    refined = np.empty((4, 2))
    for i in range(4):  # corner i joins side i - 1 (ending at it) and side i (starting at it)
        (p1, d1), (p2, d2) = lines[i - 1], lines[i]
        system = np.column_stack([d1, -d2])
        if abs(np.linalg.det(system)) < 1e-6:
            return quad
        s = np.linalg.solve(system, p2 - p1)
        refined[i] = p1 + s[0] * d1
    if np.max(np.abs(refined - quad)) > 2.0 * _EDGE_SEARCH_PX:
        return quad
    return refined


class FiducialFinder:
    """Finds AprilTag 36h11 tags; one instance per thread (the OpenCV detector is stateful)."""

    def __init__(self, tag_size_m: float = 0.146, sizes_by_id: Mapping[int, float] | None = None) -> None:
        if tag_size_m <= 0:
            raise ValueError("tag_size_m must be > 0")
        self.tag_size_m = tag_size_m
        self.sizes_by_id = dict(sizes_by_id or {})
        dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
        self._detector = cv2.aruco.ArucoDetector(dictionary, detector_parameters())

    def size_for(self, tag_id: int) -> float:
        return float(self.sizes_by_id.get(tag_id, self.tag_size_m))

    def find(
        self,
        image: np.ndarray,
        intrinsics: PinholeIntrinsics | None = None,
        image_scale: float = 1.0,
    ) -> list[FiducialDetection]:
        """Tags in a grey or BGR uint8 image.

        Corners are returned in original-image pixels (divided by `image_scale` when the image
        was decoded reduced). Without intrinsics the pose is NaN (`has_pose` False).
        """
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        corners, ids, _ = self._detector.detectMarkers(grey)
        if ids is None or len(ids) == 0:
            return []
        found = []
        for quad, tag_id in zip(corners, ids.reshape(-1)):
            pts = refine_tag_corners(grey, quad) / image_scale
            size = self.size_for(int(tag_id))
            R, t = self._pose(pts, size, intrinsics)
            found.append(
                FiducialDetection(tag_id=int(tag_id), corners=pts, camera_R_tag=R, camera_t_tag=t, size_m=size)
            )
        return found

    @staticmethod
    def _pose(
        corners: np.ndarray, size_m: float, intrinsics: PinholeIntrinsics | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if intrinsics is None:
            return _NO_POSE_R.copy(), _NO_POSE_T.copy()
        ok, rvec, tvec = cv2.solvePnP(
            tag_object_points(size_m),
            corners,
            intrinsics.camera_matrix(),
            None,
            flags=cv2.SOLVEPNP_IPPE_SQUARE,
        )
        if not ok:
            return _NO_POSE_R.copy(), _NO_POSE_T.copy()
        R, _ = cv2.Rodrigues(rvec)
        return R, tvec.reshape(3)
