"""One camera's picture: backdrop, then the floor, then the objects far to near (painter's order).

The three public entry points share this one composition so a grey-only or depth-only render
paints exactly what the combined render does, skipping only the buffer it does not need.
"""

from __future__ import annotations

import zlib

import numpy as np
from bosdyn.client.math_helpers import SE3Pose

from sim.cameras import CameraSpec
from sim.render.canvas import Canvas
from sim.render.floor import paint_floor
from sim.render.planes import scene_planes
from sim.render.projection import camera_rt
from sim.scene import Lighting, Scenario


def _render(
    camera: CameraSpec, odom_tform_body: SE3Pose, scenario: Scenario, t: float, want_grey: bool, want_depth: bool
) -> Canvas:
    rot, origin = camera_rt(camera, odom_tform_body)
    canvas = Canvas(camera, want_grey, want_depth, backdrop=scenario.backdrop_grey)
    paint_floor(canvas, rot, origin, scenario.floor)
    for plane in scene_planes(scenario, t, rot, origin):
        canvas.paint_plane(plane)
    if canvas.grey is not None:
        apply_lighting(canvas.grey, scenario.lighting, noise_seed=zlib.crc32(f"{camera.name}@{t:.6f}".encode()))
    return canvas


def apply_lighting(grey: np.ndarray, lighting: Lighting, noise_seed: int) -> None:
    """Dim and add sensor noise in place: `255 * gain * (grey / 255) ** gamma + noise`.

    The noise is seeded by the camera and the time, so a frame renders the same every time.
    """
    if lighting.gain == 1.0 and lighting.gamma == 1.0 and lighting.noise_sigma == 0.0:
        return
    levels = 255.0 * lighting.gain * (np.arange(256, dtype=np.float32) / 255.0) ** lighting.gamma
    out = levels[grey]
    if lighting.noise_sigma > 0.0:
        rng = np.random.default_rng(noise_seed)
        out += rng.normal(0.0, lighting.noise_sigma, size=grey.shape).astype(np.float32)
    grey[...] = np.clip(np.rint(out), 0, 255).astype(np.uint8)


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
