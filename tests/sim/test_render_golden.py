"""The renderer's output is pinned: every shipped scenario, seen by all five cameras from a few
poses and times, renders exactly what it rendered when `fixtures/render_golden.json` was
recorded (grey and depth bytes, and the AprilTags reported visible).

Why: the renderer is pure arithmetic that many tests and the detector tuning lean on; a
refactor of it must be provably a no-op. Exact bytes are only comparable on the OpenCV, NumPy
and CPU architecture the digests were recorded with (OpenCV's warps change between releases),
so elsewhere the frames are compared coarsely instead: 80 x 80 px block means within a small
tolerance, and the same tags at the same corners (to a tenth of a pixel).

Re-record after an intended change to the picture: `python tests/sim/test_render_golden.py`.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from bosdyn.client.math_helpers import Quat, SE3Pose

from sim.cameras import CAMERAS
from sim.render import render_depth, render_grey, render_grey_and_depth, visible_tags
from sim.scene import load_scenario, scenario_dir

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "render_golden.json"
BLOCK_PX = 80
# (body pose in odom, seconds since sim start): standing at the start, and walked off to the
# side, turned and lower, later on (walking people have moved).
VIEWS = {
    "start": (SE3Pose(0.0, 0.0, 0.5, Quat.from_yaw(0.0)), 0.0),
    "moved": (SE3Pose(1.3, -0.4, 0.45, Quat.from_yaw(0.35)), 2.7),
}
# Coarse comparison (another OpenCV or machine): block means may move this much. Measured
# between OpenCV 4.8 and 5.1: warps move block means by up to 1.3 grey levels (0.1 on average)
# and 5 mm of depth; cv2.putText draws the STOP letters differently (a block by 16 levels).
GREY_BLOCK_TOLERANCE = 24.0  # grey levels, any one block
GREY_MEAN_TOLERANCE = 1.5  # grey levels, averaged over a frame's blocks
DEPTH_BLOCK_TOLERANCE_MM = 10.0
CORNER_TOLERANCE_PX = 0.1


def _environment() -> dict[str, str]:
    return {"opencv": cv2.__version__, "numpy": np.__version__, "machine": platform.machine()}


def _blocks(image: np.ndarray) -> np.ndarray:
    h, w = image.shape
    return image.reshape(h // BLOCK_PX, BLOCK_PX, w // BLOCK_PX, BLOCK_PX).astype(np.float64).mean(axis=(1, 3))


DEPTH_CELL_PX = 20  # depth is compared on a 24 x 32 grid of cell medians
# Another OpenCV rasterises polygon edges a pixel apart: where depth jumps by metres (a wall's
# edge), the cells on that line differ (between OpenCV 4.8 and 5.1 on people_clutter: at most 4
# of 768 cells, 0.5%). Everywhere else surfaces must agree; at most this share of cells may differ.
DEPTH_CELLS_MAY_DIFFER = 0.03


def _depth_cells(depth: np.ndarray) -> np.ndarray:
    """Median depth (mm) of each DEPTH_CELL_PX square cell."""
    h, w = depth.shape
    c = DEPTH_CELL_PX
    cells = depth.reshape(h // c, c, w // c, c).swapaxes(1, 2).reshape(h // c, w // c, -1)
    return np.median(cells.astype(np.float64), axis=2) * 1000.0


def _digest(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def _frames() -> dict[str, dict[str, Any]]:
    frames = {}
    for path in sorted(scenario_dir().glob("*.yaml")):
        scenario = load_scenario(path)
        for view, (pose, t) in VIEWS.items():
            for camera_name, camera in CAMERAS.items():
                grey, depth = render_grey_and_depth(camera, pose, scenario, t)
                tags = visible_tags(camera, pose, scenario, t)
                frames[f"{path.stem}/{view}/{camera_name}"] = {
                    "grey_sha256": _digest(grey),
                    "depth_sha256": _digest(depth),
                    "grey_blocks": np.round(_blocks(grey), 2).tolist(),
                    "depth_blocks_mm": np.round(_blocks(depth) * 1000.0, 1).tolist(),
                    "depth_cells_mm": np.round(_depth_cells(depth)).astype(int).tolist(),
                    "tags": [[v.tag_id, *np.round(v.corners_px.ravel(), 4).tolist()] for v in tags],
                }
    return frames


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    return _frames()


def test_every_shipped_scenario_is_pinned(golden: dict[str, Any], rendered: dict[str, dict[str, Any]]) -> None:
    assert sorted(rendered) == sorted(golden["frames"])
    # The pinned views see something: tags, and objects nearer than the floor's far bands.
    assert sum(len(f["tags"]) for f in golden["frames"].values()) >= 3


def test_frames_match_the_recorded_ones(golden: dict[str, Any], rendered: dict[str, dict[str, Any]]) -> None:
    exact = golden["environment"] == _environment()
    wrong = []
    for key, want in golden["frames"].items():
        got = rendered[key]
        if exact:
            for field in ("grey_sha256", "depth_sha256"):
                if got[field] != want[field]:
                    wrong.append(f"{key}: {field} differs")
        grey_diffs = np.abs(np.array(got["grey_blocks"]) - np.array(want["grey_blocks"]))
        grey_diff, grey_mean = grey_diffs.max(), grey_diffs.mean()
        cells_off = np.abs(np.array(got["depth_cells_mm"]) - np.array(want["depth_cells_mm"])) > DEPTH_BLOCK_TOLERANCE_MM
        depth_diff = np.abs(np.array(got["depth_blocks_mm"]) - np.array(want["depth_blocks_mm"])).max()
        if grey_diff > GREY_BLOCK_TOLERANCE:
            wrong.append(f"{key}: a grey block mean moved by {grey_diff:.2f} levels")
        if grey_mean > GREY_MEAN_TOLERANCE:
            wrong.append(f"{key}: grey block means moved by {grey_mean:.2f} levels on average")
        if cells_off.mean() > DEPTH_CELLS_MAY_DIFFER:
            wrong.append(f"{key}: {cells_off.mean():.1%} of depth cells moved by > {DEPTH_BLOCK_TOLERANCE_MM} mm")
        if exact and depth_diff > DEPTH_BLOCK_TOLERANCE_MM:  # same OpenCV: the block means too
            wrong.append(f"{key}: a depth block mean moved by {depth_diff:.1f} mm")
        got_ids = [t[0] for t in got["tags"]]
        want_ids = [t[0] for t in want["tags"]]
        if got_ids != want_ids:
            wrong.append(f"{key}: visible tags {got_ids}, recorded {want_ids}")
        elif got["tags"] and np.abs(np.array(got["tags"]) - np.array(want["tags"])).max() > CORNER_TOLERANCE_PX:
            wrong.append(f"{key}: tag corners moved")
    assert not wrong, "\n".join(wrong)


def test_grey_only_and_depth_only_renders_match_the_combined_one() -> None:
    """`render_grey` / `render_depth` skip half the work; they must not paint anything else."""
    scenario = load_scenario(scenario_dir() / "default.yaml")
    pose, t = VIEWS["moved"]
    for camera in CAMERAS.values():
        grey, depth = render_grey_and_depth(camera, pose, scenario, t)
        assert np.array_equal(render_grey(camera, pose, scenario, t), grey)
        assert np.array_equal(render_depth(camera, pose, scenario, t), depth)


if __name__ == "__main__":
    lines = [f" {json.dumps(key)}: {json.dumps(frame)}" for key, frame in _frames().items()]
    GOLDEN.write_text(f'{{"environment": {json.dumps(_environment())},\n"frames": {{\n' + ",\n".join(lines) + "\n}}\n")
    print(f"recorded {GOLDEN}", file=sys.stderr)
