"""AprilTag 36h11 fiducials with OpenCV's aruco module, posed with solvePnP (IPPE_SQUARE).

Tags are found in the original (unrotated) image: the detector is rotation invariant, and the
pose needs the original image's intrinsics. The tag frame is OpenCV's IPPE_SQUARE one: origin at
the tag's centre, x to the tag's right, y up, z out of the printed face (towards a camera that
sees it), so `camera_R_tag[:, 2]` is the direction the tag faces.
"""

from __future__ import annotations

from typing import Mapping

import cv2
import numpy as np

from perception.detection import FiducialDetection
from perception.frame import PinholeIntrinsics

_NO_POSE_R = np.full((3, 3), np.nan)
_NO_POSE_T = np.full(3, np.nan)


def tag_object_points(size_m: float) -> np.ndarray:
    """The 4 tag corners in the tag frame, in aruco's corner order (TL, TR, BR, BL as printed)."""
    h = size_m / 2.0
    return np.array([[-h, h, 0.0], [h, h, 0.0], [h, -h, 0.0], [-h, -h, 0.0]], dtype=np.float64)


class FiducialFinder:
    """Finds AprilTag 36h11 tags; one instance per thread (the OpenCV detector is stateful)."""

    def __init__(self, tag_size_m: float = 0.146, sizes_by_id: Mapping[int, float] | None = None) -> None:
        if tag_size_m <= 0:
            raise ValueError("tag_size_m must be > 0")
        self.tag_size_m = tag_size_m
        self.sizes_by_id = dict(sizes_by_id or {})
        params = cv2.aruco.DetectorParameters()
        params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11)
        self._detector = cv2.aruco.ArucoDetector(dictionary, params)

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
            pts = quad.reshape(4, 2).astype(np.float64) / image_scale
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
