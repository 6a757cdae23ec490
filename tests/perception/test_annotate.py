"""The one box drawer (`perception.annotate.draw_detections`), as detect, snapshots and replay use it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perception.annotate import LABEL_PALETTE_RGB, colour_for, draw_detections, label_rgb


@dataclass(frozen=True)
class Box:
    label: str
    score: float
    box: tuple[float, float, float, float]


def test_boxes_land_where_scale_puts_them_on_a_bgr_copy() -> None:
    grey = np.full((240, 320), 128, np.uint8)
    # Box in original-image pixels (640x480); the frame we have was decoded at half size.
    out = draw_detections(grey, [Box("dog", 0.5, (200.0, 100.0, 400.0, 300.0))], scale=0.5)
    assert out.shape == (240, 320, 3) and (grey == 128).all()  # a BGR copy; the input is untouched
    colour = colour_for("dog")
    assert tuple(out[100, 100]) == colour  # the left edge, at x = 200 * 0.5, halfway down
    assert tuple(out[150, 150]) == colour  # the bottom edge, at y = 300 * 0.5
    assert tuple(out[100, 150]) == (128, 128, 128)  # inside the box: the frame as it was
    assert (out[160:] == 128).all()  # nothing below it (unscaled, the box would reach y = 300)

def test_caption_is_black_text_on_the_class_colour() -> None:
    out = draw_detections(np.zeros((480, 640, 3), np.uint8), [Box("person", 0.87, (100.0, 100.0, 300.0, 400.0))])
    band = out[80:100, 100:200].reshape(-1, 3)  # the caption sits on the box's top edge
    colour = np.array(colour_for("person"))
    on_colour = (band == colour).all(axis=1).mean()
    dark_text = (band.sum(axis=1) < 60).mean()
    assert on_colour > 0.4 and dark_text > 0.05


def test_a_class_has_one_colour_everywhere() -> None:
    # the pick depends on the label only (not on a class id or the process's hash seed), and
    # it is the palette the Foxglove live view uses
    assert colour_for("person") == colour_for("person")
    assert label_rgb("person") in LABEL_PALETTE_RGB
    r, g, b = label_rgb("person")
    assert colour_for("person") == (round(b * 255), round(g * 255), round(r * 255))  # BGR
    assert len({colour_for(label) for label in ("person", "car", "stop sign", "bicycle")}) > 1


def test_captions_of_boxes_sharing_a_corner_do_not_cover_each_other() -> None:
    # A close-up covering the frame and a person inside it at its top-left (seen on a portrait):
    # both captions would go at the image's top; the second moves down below the first.
    boxes = [Box("person", 0.87, (19.0, 5.0, 634.0, 480.0)), Box("person", 0.35, (2.0, 3.0, 165.0, 234.0))]
    out = draw_detections(np.zeros((480, 640, 3), np.uint8), boxes)
    colour = np.array(colour_for("person"))
    rows = [y for y in range(80) if (out[y, 20:60] == colour).all(axis=1).mean() > 0.3]
    # One caption band is 19 rows here; two stacked are ~35 (printed over each other: 19).
    assert len(rows) >= 30, rows
