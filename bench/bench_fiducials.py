"""AprilTag 36h11 finders compared on one image set: detection rate, pose error, time per frame.

    python bench/bench_fiducials.py [--photo-cases 400] [--seed 1] [--repeats 3]

The set (built here, reproducibly from `--seed`):
- sim: the simulated Spot's front cameras (640x480 grey, f = 280 px) looking at 0.146 and 0.2 m
  tags 0.5-4 m ahead at yaws 150-210 degrees; ground truth from the sim's geometry
  (`visible_tags`), so pose errors are exact.
- photo: a tag at a random pose warped into real photographs (scikit-image's sample photos,
  640x480 grey, f = 552 px) with dim light and contrast loss (the print's black and white come
  out as 20-110 and 110-240), blur, noise and JPEG compression; big (150-300 px), medium,
  small and tiny (10-20 px) tags, some touching the frame edge. Ground truth from the pose.

For every finder it prints per size bucket (tag edge in px) how many tags were found, the
rotation error (deg) and translation error (% of distance) of the solvePnP pose from its corners
(median / 95th percentile), false detections, and the mean CPU time per 640x480 frame with its
ratio to the previous finder's (one 7-px threshold window + the edge refinement), all measured in
this run, and how many tags OpenCV's default `ArucoDetector` finds that each finder misses (the
shipped `perception.fiducials.FiducialFinder` must miss none).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import cv2
import numpy as np
from bosdyn.client.math_helpers import Quat, SE3Pose
from fixtures.perception_support import render_tag, rotation_matrix

from perception.fiducials import FiducialFinder, refine_tag_corners, tag_object_points
from perception.frame import PinholeIntrinsics
from sim.cameras import CAMERAS
from sim.render import render_grey, visible_tags
from sim.scene import parse_scenario

PHOTO_K = PinholeIntrinsics(fx=552.0, fy=550.0, cx=322.0, cy=238.0)
BUCKETS = [(0, 20, "10-20"), (20, 40, "20-40"), (40, 100, "40-100"), (100, 150, "100-150"), (150, 1e9, "150-300")]
PHOTOS = ["astronaut", "camera", "coffee", "chelsea", "rocket", "brick", "grass", "gravel", "coins",
          "moon", "page", "clock", "hubble_deep_field", "retina"]
FACING_CAMERA = np.diag([1.0, -1.0, -1.0])
PREVIOUS = "previous: win 7 + edge refine"  # the finder before issue 17, the time baseline
SHIPPED = "FiducialFinder (shipped)"
DEFAULTS = "aruco defaults (win 3,13,23)"


@dataclass
class Truth:
    tag_id: int
    corners: np.ndarray  # 4 x 2, aruco order
    R: np.ndarray
    t: np.ndarray
    size_m: float

    @property
    def edge_px(self) -> float:
        return float(np.mean(np.linalg.norm(self.corners - np.roll(self.corners, 1, axis=0), axis=1)))


@dataclass
class Case:
    kind: str  # "sim" or "photo"
    image: np.ndarray
    intrinsics: PinholeIntrinsics
    truths: list[Truth]


Found = list[tuple[int, np.ndarray]]  # (id, 4 x 2 corners in aruco order)


def sim_cases() -> list[Case]:
    cases = []
    body = SE3Pose(0.0, 0.0, 0.5, Quat())
    for size in (0.146, 0.2):
        for distance in (0.8, 1.2, 1.6, 2.0, 2.5, 3.0, 3.5, 4.0):
            for yaw in (150.0, 165.0, 180.0, 195.0, 210.0):
                for lateral in (-0.3, 0.0, 0.3):
                    scenario = parse_scenario({"objects": [{
                        "type": "apriltag", "tag_id": 7, "size_m": size,
                        "pose": {"x": distance, "y": lateral, "z": 0.3, "yaw_deg": yaw}}]}, "bench")
                    for name in ("frontleft_fisheye_image", "frontright_fisheye_image"):
                        spec = CAMERAS[name]
                        views = visible_tags(spec, body, scenario, 0.0)
                        if not views:
                            continue
                        truths = []
                        for v in views:
                            ct = v.camera_tform_tag
                            truths.append(Truth(v.tag_id, v.corners_px, ct.rotation.to_matrix(),
                                                np.array([ct.x, ct.y, ct.z]), v.size_m))
                        cases.append(Case("sim", render_grey(spec, body, scenario, 0.0), spec.intrinsics, truths))
    return cases


def _photos() -> list[np.ndarray]:
    import skimage.data

    out = []
    for name in PHOTOS:
        img = np.asarray(getattr(skimage.data, name)())
        if img.ndim == 3:
            img = cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2GRAY)
        if img.dtype != np.uint8:
            img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        out.append(cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA))
    return out


def degrade(image: np.ndarray, rng: np.random.Generator, blur: float, noise: float, jpeg: int) -> np.ndarray:
    out = image.astype(np.float32)
    if blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    if noise > 0:
        out += rng.normal(0.0, noise, out.shape).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if jpeg < 100:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, jpeg])
        assert ok
        out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out


def photo_case(photo: np.ndarray, rng: np.random.Generator, edge_px: float, near_edge: bool) -> Case:
    """One tag of about `edge_px` pixels at a random pose in `photo`, degraded at random."""
    K = PHOTO_K.camera_matrix()
    size = 0.146
    R = rotation_matrix(yaw_deg=rng.uniform(-50, 50), pitch_deg=rng.uniform(-35, 35),
                        roll_deg=rng.uniform(-180, 180)) @ FACING_CAMERA
    z = PHOTO_K.fx * size / edge_px
    # Where the centre goes: anywhere the tag fits, or with its sheet near the frame edge.
    half = edge_px * 0.8
    if near_edge:
        side = rng.integers(4)
        u = rng.uniform(half, 640 - half) if side < 2 else (half + 3 if side == 2 else 640 - half - 3)
        v = rng.uniform(half, 480 - half) if side >= 2 else (half + 3 if side == 0 else 480 - half - 3)
    else:
        u, v = rng.uniform(half, 640 - half), rng.uniform(half, 480 - half)
    t = np.array([(u - PHOTO_K.cx) * z / PHOTO_K.fx, (v - PHOTO_K.cy) * z / PHOTO_K.fy, z])
    black = int(rng.uniform(20, 110))
    white = int(rng.uniform(max(black + 40, 110), 240))
    tag_id = int(rng.integers(587))
    image = render_tag(tag_id, R, t, size, K, background=photo, levels=(black, white))
    image = degrade(image, rng, blur=float(rng.choice([0.0, 0.7, 1.2, 2.0])),
                    noise=float(rng.choice([0.0, 2.0, 5.0])), jpeg=int(rng.choice([100, 85, 60, 40])))
    cam = (R @ tag_object_points(size).T).T + t
    px = (K @ cam.T).T
    corners = px[:, :2] / px[:, 2:3]
    return Case("photo", image, PHOTO_K, [Truth(tag_id, corners, R, t, size)])


def photo_cases(count: int, seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    photos = _photos()
    cases = []
    ranges = [(10, 20), (20, 40), (40, 100), (150, 300)]
    for i in range(count):
        lo, hi = ranges[i % len(ranges)]
        edge = float(rng.uniform(lo, hi))
        cases.append(photo_case(photos[i % len(photos)], rng, edge, near_edge=bool(rng.random() < 0.3)))
    return cases


# --- finders -----------------------------------------------------------------------------------

def _aruco(params: cv2.aruco.DetectorParameters) -> Callable[[np.ndarray], Found]:
    detector = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11), params)

    def find(grey: np.ndarray) -> Found:
        corners, ids, _ = detector.detectMarkers(grey)
        if ids is None:
            return []
        return [(int(i), c.reshape(4, 2).astype(np.float64)) for c, i in zip(corners, ids.reshape(-1))]

    return find


def _aruco_params(refine: int | None = None, **windows: int) -> cv2.aruco.DetectorParameters:
    p = cv2.aruco.DetectorParameters()
    if refine is not None:
        p.cornerRefinementMethod = refine
    for k, v in windows.items():
        setattr(p, k, v)
    return p


def _edge_refined(params: cv2.aruco.DetectorParameters) -> Callable[[np.ndarray], Found]:
    """aruco's candidates with the shipped sub-pixel edge refinement."""
    find_raw = _aruco(params)
    return lambda grey: [(i, refine_tag_corners(grey, c)) for i, c in find_raw(grey)]


def _pyramid(params: cv2.aruco.DetectorParameters) -> Callable[[np.ndarray], Found]:
    """One window on the image and on its half-size copy (a window twice as wide), edge-refined."""
    find_raw = _aruco(params)

    def find(grey: np.ndarray) -> Found:
        full = find_raw(grey)
        seen = {i for i, _ in full}
        half = cv2.resize(grey, (grey.shape[1] // 2, grey.shape[0] // 2), interpolation=cv2.INTER_AREA)
        full += [(i, c * 2.0 + 0.5) for i, c in find_raw(half) if i not in seen]
        return [(i, refine_tag_corners(grey, c)) for i, c in full]

    return find


def _windows(lo: int, hi: int, step: int) -> dict[str, int]:
    return {"adaptiveThreshWinSizeMin": lo, "adaptiveThreshWinSizeMax": hi, "adaptiveThreshWinSizeStep": step}


def _shipped() -> Callable[[np.ndarray], Found]:
    finder = FiducialFinder()
    return lambda grey: [(f.tag_id, np.asarray(f.corners, np.float64)) for f in finder.find(grey, None)]


def _pupil(decimate: float) -> Callable[[np.ndarray], Found] | None:
    try:
        import pupil_apriltags
    except ImportError:
        return None
    detector = pupil_apriltags.Detector(families="tag36h11", nthreads=1, quad_decimate=decimate, refine_edges=1)

    def find(grey: np.ndarray) -> Found:
        # AprilTag's corners, in aruco's order (TL, TR, BR, BL as printed) are its 1, 0, 3, 2.
        return [(int(d.tag_id), np.asarray(d.corners, np.float64)[[1, 0, 3, 2]]) for d in detector.detect(grey)]

    return find


def finders() -> dict[str, Callable[[np.ndarray], Found]]:
    a = cv2.aruco
    win7 = _aruco_params(minMarkerPerimeterRate=0.05, **_windows(7, 7, 10))
    out: dict[str, Callable[[np.ndarray], Found] | None] = {
        PREVIOUS: _edge_refined(win7),
        SHIPPED: _shipped(),
        DEFAULTS: _aruco(_aruco_params()),
        "aruco defaults + SUBPIX": _aruco(_aruco_params(a.CORNER_REFINE_SUBPIX)),
        "aruco defaults + CONTOUR": _aruco(_aruco_params(a.CORNER_REFINE_CONTOUR)),
        "aruco defaults + APRILTAG": _aruco(_aruco_params(a.CORNER_REFINE_APRILTAG)),
        "aruco win 7, no refinement": _aruco(win7),
        "edge-refined win 7,17": _edge_refined(_aruco_params(minMarkerPerimeterRate=0.05, **_windows(7, 17, 10))),
        "edge-refined win 7 + half-size": _pyramid(win7),
        "pupil-apriltags decimate 1": _pupil(1.0),
        "pupil-apriltags decimate 2": _pupil(2.0),
    }
    return {k: v for k, v in out.items() if v is not None}


# --- scoring -----------------------------------------------------------------------------------

def _angle_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    return math.degrees(math.acos(float(np.clip((np.trace(Ra.T @ Rb) - 1.0) / 2.0, -1.0, 1.0))))


def _match(truth: Truth, found: Found) -> np.ndarray | None:
    for tag_id, corners in found:
        if tag_id == truth.tag_id and np.max(np.linalg.norm(corners - truth.corners, axis=1)) < max(
            3.0, 0.25 * truth.edge_px
        ):
            return corners
    return None


def _pose_error(truth: Truth, corners: np.ndarray, intrinsics: PinholeIntrinsics) -> tuple[float, float]:
    ok, rvec, tvec = cv2.solvePnP(tag_object_points(truth.size_m), corners, intrinsics.camera_matrix(), None,
                                  flags=cv2.SOLVEPNP_IPPE_SQUARE)
    R, _ = cv2.Rodrigues(rvec)
    return _angle_deg(R, truth.R), 100.0 * float(np.linalg.norm(tvec.reshape(3) - truth.t) / np.linalg.norm(truth.t))


def _bucket(edge_px: float) -> str:
    return next(name for lo, hi, name in BUCKETS if lo <= edge_px < hi)


def _cpu_ms(find: Callable[[np.ndarray], Found], images: list[np.ndarray], repeats: int) -> float:
    per_frame = []
    for _ in range(repeats):
        c0 = time.thread_time()
        for image in images:
            find(image)
        per_frame.append((time.thread_time() - c0) * 1e3 / len(images))
    return min(per_frame)


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo-cases", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # one core per finder, as on the robot (2 cores, 5 cameras, a detector)

    cases = sim_cases() + photo_cases(args.photo_cases, args.seed)
    all_finders = finders()
    found = {name: [fn(c.image) for c in cases] for name, fn in all_finders.items()}
    images = [c.image for c in cases]
    times = {name: _cpu_ms(fn, images, args.repeats) for name, fn in all_finders.items()}
    base_ms = times[PREVIOUS]

    for kind in ("sim", "photo"):
        idx = [i for i, c in enumerate(cases) if c.kind == kind]
        totals: dict[str, int] = {}
        for i in idx:
            for tr in cases[i].truths:
                totals[_bucket(tr.edge_px)] = totals.get(_bucket(tr.edge_px), 0) + 1
        names = [b for _, _, b in BUCKETS if b in totals]
        print(f"\n{kind}: {len(idx)} images; found / tags per edge-px bucket; pose error median / p95 "
              f"(rotation deg, translation % of distance); false = detections of absent ids")
        print(f"{'finder':30s} " + " ".join(f"{b + ' (' + str(totals[b]) + ')':>13s}" for b in names)
              + f" {'rot deg':>12s} {'trans %':>12s} {'false':>5s}")
        for name in all_finders:
            hits: dict[str, int] = dict.fromkeys(names, 0)
            rot, trans, false = [], [], 0
            for i in idx:
                case = cases[i]
                ids = {tr.tag_id for tr in case.truths}
                false += sum(1 for tag_id, _ in found[name][i] if tag_id not in ids)
                for tr in case.truths:
                    corners = _match(tr, found[name][i])
                    if corners is None:
                        continue
                    hits[_bucket(tr.edge_px)] += 1
                    r, t = _pose_error(tr, corners, case.intrinsics)
                    rot.append(r)
                    trans.append(t)
            print(f"{name:30s} " + " ".join(f"{hits[b]:>13d}" for b in names)
                  + f" {statistics.median(rot) if rot else float('nan'):5.2f} / {_pct(rot, 95):5.1f}"
                  + f" {statistics.median(trans) if trans else float('nan'):5.2f} / {_pct(trans, 95):5.1f}"
                  + f" {false:5d}")

    print(f"\nCPU time per 640x480 frame (mean over {len(images)} frames, best of {args.repeats} runs, 1 thread);"
          " missed = tags OpenCV's default ArucoDetector finds that this finder does not")
    defaults = found[DEFAULTS]
    for name, ms in times.items():
        missed = sum(
            len({i for i, _ in defaults[k]} - {i for i, _ in found[name][k]}) for k in range(len(cases))
        )
        print(f"{name:30s} {ms:7.2f} ms   ratio to previous {ms / base_ms:5.2f}   missed {missed:3d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
