"""One camera's picture: backdrop, then the floor, then the objects far to near (painter's order).

The three public entry points share this one composition so a grey-only or depth-only render
paints exactly what the combined render does, skipping only the buffer it does not need.
"""

from __future__ import annotations

import numpy as np
from bosdyn.client.math_helpers import SE3Pose

from sim.cameras import CameraSpec
from sim.render.canvas import Canvas
from sim.render.floor import paint_floor
from sim.render.planes import scene_planes
from sim.render.projection import camera_rt
from sim.scene import Scenario


def _render(
    camera: CameraSpec, odom_tform_body: SE3Pose, scenario: Scenario, t: float, want_grey: bool, want_depth: bool
) -> Canvas:
    rot, origin = camera_rt(camera, odom_tform_body)
    canvas = Canvas(camera, want_grey, want_depth)
    paint_floor(canvas, rot, origin)
    for plane in scene_planes(scenario, t, rot, origin):
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
