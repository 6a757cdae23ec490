"""The person dev set's files and labels agree with each other and with its README."""

from __future__ import annotations

import re

import cv2

from tests.support.devset import DEVSET_DIR, load_devset


def test_every_image_is_a_grey_640x480_frame_with_boxes_inside() -> None:
    images = load_devset()
    assert images
    for image in images:
        assert image.path.is_file(), image.path
        grey = cv2.imread(str(image.path), cv2.IMREAD_UNCHANGED)
        assert grey is not None and grey.shape == (480, 640), image.path
        assert (image.width, image.height) == (640, 480)
        for x1, y1, x2, y2 in image.persons + image.ignored:
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480, (image.path, (x1, y1, x2, y2))


def test_no_image_file_is_unlabelled_and_variants_keep_their_frames_boxes() -> None:
    images = load_devset()
    on_disk = {p.name for p in (DEVSET_DIR / "images").glob("*.jpg")}
    assert on_disk == {image.path.name for image in images}
    by_name = {image.path.name: image for image in images}
    for image in images:
        if image.variant_of is not None:
            base = by_name[image.variant_of]
            assert (image.persons, image.ignored) == (base.persons, base.ignored)


def test_counts_match_the_readme() -> None:
    images = load_devset()
    readme = (DEVSET_DIR / "README.md").read_text()
    counts = {
        "images": len(images),
        "images with a person to find": sum(1 for i in images if i.persons),
        "negatives": sum(1 for i in images if i.is_negative),
        "persons": sum(len(i.persons) for i in images),
        "ignored persons": sum(len(i.ignored) for i in images),
    }
    for what, count in counts.items():
        match = re.search(rf"^\| {what} \| (\d+) \|", readme, re.MULTILINE)
        assert match, f"README has no '| {what} |' row"
        assert int(match.group(1)) == count, what
