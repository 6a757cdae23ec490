"""Render what a simulated camera sees: grey image, depth, and which AprilTags are in view.

Pinhole geometry throughout (the served intrinsics are exactly the ones used here). The world is
a textured floor (z = 0 in odom, coarser texture levels with distance), a plain bright backdrop
above the horizon, and planar objects: AprilTag boards and stop signs on posts, and people as
upright billboards turned to face the camera. Every plane is clipped against the near plane in
camera space before projection (no wrap-around from points behind the camera), warped into the
image with an OpenCV homography restricted to its bounding box, and painted far to near.

Where each part lives:
- `projection`: camera pose, near-plane clipping, projection, pixel boxes, sub-pixel fill;
- `textures`, `person`, `people`, `surfaces`: the grey textures (tags, stop sign, concrete,
  shadow; the astronaut photo; the vtest pedestrians by appearance; walls, boxes, other floors);
- `planes`: the scenario's objects as textured quads in the camera frame, far to near;
- `floor`: the floor in depth bands (mip level by distance) and its depth;
- `canvas`: the grey/depth (and, for `sim.dataset`, plane-number) buffers and how one plane is
  painted into them;
- `compose`: backdrop, floor, objects, lighting: the three public render functions;
- `tags`: which AprilTags a camera can see (`visible_tags`, `TagView`).
"""

from __future__ import annotations

from sim.render.compose import render_depth, render_grey, render_grey_and_depth
from sim.render.projection import odom_tform_camera
from sim.render.tags import TagView, visible_tags

__all__ = ["TagView", "odom_tform_camera", "render_depth", "render_grey", "render_grey_and_depth", "visible_tags"]
