"""Upright rotation for sideways cameras, and boxes mapped back to the original image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from fixtures.perception_support import iou
from scipy import ndimage

from perception.rotation import upright_rotation


def _blob_centre(image: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(image > 128)
    return float(xs.mean()), float(ys.mean())


@pytest.mark.parametrize("angle", [-78.0, -102.0, 180.0, 90.0, 33.0])
def test_same_canvas_and_direction_as_the_sdk_examples_scipy_rotate(angle: float) -> None:
    img = np.zeros((480, 640), np.uint8)
    cv2.circle(img, (100, 50), 6, 255, -1)
    rot = upright_rotation(angle, 640, 480)
    mine = rot.apply(img)
    reference = ndimage.rotate(img, angle, order=1)  # what the SDK examples call
    assert mine.shape == reference.shape
    assert np.allclose(_blob_centre(mine), _blob_centre(reference), atol=0.5)


@pytest.mark.parametrize("angle", [-78.0, -102.0, 180.0, 0.0])
def test_box_in_rotated_image_maps_back_onto_the_object(angle: float) -> None:
    img = np.zeros((480, 640), np.uint8)
    obj = (400, 100, 480, 300)  # x1, y1, x2, y2 of a solid rectangle
    img[obj[1] : obj[3], obj[0] : obj[2]] = 255
    rot = upright_rotation(angle, 640, 480)
    rotated = rot.apply(img)
    # What a detector would report on the rotated image: the object's bounding box there.
    ys, xs = np.nonzero(rotated > 128)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float64)
    back = rot.boxes_to_source(found)[0]
    # An axis-aligned box of a rotated rectangle, rotated back, bounds the object (a bit loosely
    # for oblique angles) and stays inside the image.
    assert back[0] <= obj[0] + 1 and back[1] <= obj[1] + 1 and back[2] >= obj[2] - 1 and back[3] >= obj[3] - 1
    assert iou(back, obj) > (0.97 if angle % 90 == 0 else 0.3)
    assert back[0] >= 0 and back[1] >= 0 and back[2] <= 640 and back[3] <= 480


def test_points_round_trip_exactly() -> None:
    rot = upright_rotation(-78.0, 640, 480)
    pts = np.array([[0.0, 0.0], [639.0, 479.0], [123.4, 321.0]])
    forward = pts @ rot.forward[:, :2].T + rot.forward[:, 2]
    assert np.allclose(rot.points_to_source(forward), pts)


def test_boxes_outside_the_original_are_clipped() -> None:
    rot = upright_rotation(-78.0, 640, 480)
    whole = np.array([[0, 0, rot.size[0], rot.size[1]]], np.float64)
    assert np.allclose(rot.boxes_to_source(whole), [[0, 0, 640, 480]])


def test_scaled_rotation_rotates_and_resizes_in_one_warp() -> None:
    img = np.zeros((480, 640), np.uint8)
    cv2.circle(img, (100, 50), 8, 255, -1)
    rot = upright_rotation(-102.0, 640, 480)
    small = rot.scaled_to((416, 416))
    out = small.apply(img)
    assert out.shape == (416, 416)
    cx, cy = _blob_centre(out)
    assert np.allclose(small.points_to_source(np.array([[cx, cy]]))[0], (100, 50), atol=1.0)
    ref = cv2.resize(rot.apply(img), (416, 416))
    assert np.allclose(_blob_centre(ref), (cx, cy), atol=1.0)


def test_identity_returns_the_image_itself() -> None:
    img = np.zeros((10, 20), np.uint8)
    rot = upright_rotation(0.0, 20, 10)
    assert rot.is_identity and rot.apply(img) is img


@pytest.mark.parametrize("angle", [-78.0, 0.0])
def test_a_crop_of_the_upright_canvas_maps_back_to_the_original(angle: float) -> None:
    img = np.zeros((480, 640), np.uint8)
    cv2.circle(img, (300, 200), 6, 255, -1)
    rot = upright_rotation(angle, 640, 480)
    # The blob on the upright canvas, then a 100 px square around it resized to 160 x 160.
    bx, by = _blob_centre(rot.apply(img))
    crop = rot.cropped_to((bx - 30, by - 70, bx + 70, by + 30), (160, 160))
    out = crop.apply(img)
    assert out.shape == (160, 160)
    cx, cy = _blob_centre(out)
    assert np.allclose((cx, cy), ((30 + 0.5) * 1.6 - 0.5, (70 + 0.5) * 1.6 - 0.5), atol=1.5)
    assert np.allclose(crop.points_to_source(np.array([[cx, cy]]))[0], (300, 200), atol=1.0)
    # A box drawn around the blob in the crop comes back around the blob in the original.
    back = crop.boxes_to_source(np.array([[cx - 12, cy - 12, cx + 12, cy + 12]]))[0]
    assert back[0] < 300 < back[2] and back[1] < 200 < back[3]
    # And the original's box goes onto the canvas around the blob (the crop's inverse direction).
    on_canvas = rot.boxes_from_source(np.array([[290.0, 190.0, 310.0, 210.0]]))[0]
    assert on_canvas[0] < bx < on_canvas[2] and on_canvas[1] < by < on_canvas[3]
