"""Ground truth for one rendered camera frame, computed from the scene geometry (not a detector).

Every object plane is painted, in the renderer's own painter's order, into a buffer of plane
numbers (`Canvas.labels`), with the renderer's own clipping, homographies and alpha cut-outs:
the pixels where a label plane wins are exactly where the grey render shows that object. Each
labelled plane is also painted alone into an enlarged canvas (same intrinsics, `PAD_PX` more on
every side) to know its whole extent: how much the frame edge cuts (`truncated`) and how much of
what is in the frame nearer objects hide (`occluded`). Masks are turned upright with
`perception.rotation.upright_rotation`, the rotation the Perceiver applies, so the boxes are in
the pixels of the image the detector sees.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from bosdyn.client.math_helpers import SE3Pose

from perception.rotation import upright_rotation
from sim.cameras import CameraSpec
from sim.render.canvas import Canvas
from sim.render.planes import Plane, scene_planes
from sim.render.projection import camera_rt
from sim.scene import Scenario

PAD_PX = 640  # the enlarged canvas for an object's whole extent
TRUNCATED_FRACTION = 0.02  # more than this much of the object outside the frame: truncated
MIN_VISIBLE_FRACTION = 0.25  # less visible than this (cut or hidden): an ignore region
MIN_SIDE_PX = 10  # a box narrower or lower than this: an ignore region


@dataclass(frozen=True)
class ObjectTruth:
    """One labelled object in one upright frame."""

    category: str  # "person", "stop sign", "tag:<id>"
    object_index: int  # index in the scenario's objects
    bbox: tuple[float, float, float, float]  # x1, y1, x2, y2 of its visible pixels, upright image
    area: int  # visible pixels (upright image)
    distance_m: float  # camera to the object, on the floor plane
    truncated: bool  # the frame edge cuts off more than TRUNCATED_FRACTION of it
    occluded: float  # fraction of its in-frame pixels hidden by nearer objects
    visible_fraction: float  # visible pixels / pixels of the whole object (in frame or not)
    ignore: bool  # too hidden, too small, or a sign seen from behind: neither a hit nor a miss
    mask: np.ndarray  # upright visible mask (bool), for tests and debugging


def padded(camera: CameraSpec, pad: int = PAD_PX) -> CameraSpec:
    """The same camera with `pad` more pixels on every side (same focal length and centre ray)."""
    return dataclasses.replace(
        camera, width=camera.width + 2 * pad, height=camera.height + 2 * pad, cx=camera.cx + pad, cy=camera.cy + pad
    )


def plane_labels(
    camera: CameraSpec, odom_tform_body: SE3Pose, scenario: Scenario, t: float
) -> tuple[np.ndarray, list[Plane]]:
    """(per-pixel plane number, the planes) of the raw (not upright) image."""
    rot, origin = camera_rt(camera, odom_tform_body)
    planes = scene_planes(scenario, t, rot, origin)
    canvas = Canvas(camera, want_grey=False, want_depth=False, want_labels=True)
    for number, plane in enumerate(planes):
        canvas.paint_plane(plane, label=number)
    assert canvas.labels is not None
    return canvas.labels, planes


def whole_mask(camera: CameraSpec, plane: Plane) -> tuple[np.ndarray, int]:
    """(the plane's mask inside the frame, its pixel count including what lies outside)."""
    big = Canvas(padded(camera), want_grey=False, want_depth=False, want_labels=True)
    big.paint_plane(plane, label=1)
    assert big.labels is not None
    whole = big.labels == 1
    inside = whole[PAD_PX : PAD_PX + camera.height, PAD_PX : PAD_PX + camera.width]
    return inside, int(whole.sum())


def upright_mask(mask: np.ndarray, angle_deg: float) -> np.ndarray:
    """A raw-image mask turned upright exactly as the Perceiver turns the image."""
    rotation = upright_rotation(angle_deg, mask.shape[1], mask.shape[0])
    return np.asarray(rotation.apply(mask.astype(np.uint8) * 255) >= 128)


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Box in continuous pixel coordinates (pixel i spans [i, i + 1))."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def frame_truth(
    camera: CameraSpec, odom_tform_body: SE3Pose, scenario: Scenario, t: float, upright_deg: float
) -> list[ObjectTruth]:
    """Every labelled object with at least one visible pixel in this frame."""
    labels, planes = plane_labels(camera, odom_tform_body, scenario, t)
    _, origin = camera_rt(camera, odom_tform_body)
    truths = []
    for number, plane in enumerate(planes):
        if plane.category is None:
            continue
        visible_raw = labels == number
        if not visible_raw.any():
            continue
        in_frame, whole_px = whole_mask(camera, plane)
        in_frame_px = max(int(in_frame.sum()), int(visible_raw.sum()))
        visible = upright_mask(visible_raw, upright_deg)
        box = mask_box(visible)
        if box is None:
            continue
        x, y, _ = scenario.objects[plane.object_index].pose_at(t)
        visible_fraction = float(visible_raw.sum()) / max(whole_px, 1)
        small = min(box[2] - box[0], box[3] - box[1]) < MIN_SIDE_PX
        truths.append(
            ObjectTruth(
                category=plane.category,
                object_index=plane.object_index,
                bbox=box,
                area=int(visible.sum()),
                distance_m=float(np.hypot(x - origin[0], y - origin[1])),
                truncated=(whole_px - in_frame_px) > TRUNCATED_FRACTION * whole_px,
                occluded=1.0 - float(visible_raw.sum()) / max(in_frame_px, 1),
                visible_fraction=visible_fraction,
                ignore=small or visible_fraction < MIN_VISIBLE_FRACTION or plane.back,
                mask=visible,
            )
        )
    return truths
