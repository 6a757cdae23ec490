"""Cut walking pedestrians out of OpenCV's `vtest.avi` as grey + alpha sprites for the sim.

    python tools/build_person_sprites.py --video DIR/vtest.avi --out sim/assets/people [--preview /tmp/x]

`vtest.avi` ships in Debian's `opencv-doc` (`examples/data`; Apache-2.0 AND BSD-3-Clause, see
sim/assets/README.md). The camera is fixed, so the per-pixel median over the whole video is the
empty scene; a pedestrian is where a frame differs from it. Each sprite is one chosen
(frame, box) from `SPRITES`, its mask the thresholded difference, cleaned by morphology and kept
to the largest connected blob (one person), feathered at the edge. Written as BGRA PNG (grey in
B, G, R; the mask in A), cropped to the mask so the feet are the last row.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

# (name, frame, x, y, w, h): hand-picked lone pedestrians, whole body in view, nobody overlapping.
SPRITES: tuple[tuple[str, int, int, int, int, int], ...] = (
    ("walker_jeans_front", 200, 616, 264, 36, 107),
    ("walker_jeans_side", 220, 583, 295, 42, 118),
    ("walker_dark_stride", 380, 559, 268, 56, 114),
    ("walker_dark_coat", 540, 635, 287, 45, 105),
    ("walker_puffer", 580, 232, 336, 46, 133),
    ("walker_grey_coat", 660, 684, 295, 44, 120),
)


def read_frames(video: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    if not frames:
        raise SystemExit(f"{video}: no frames decoded")
    return frames


def background(frames: list[np.ndarray]) -> np.ndarray:
    return np.median(np.stack(frames[::5]), axis=0).astype(np.uint8)


def foreground(frame: np.ndarray, empty: np.ndarray) -> np.ndarray:
    diff = cv2.absdiff(cv2.GaussianBlur(frame, (3, 3), 0), cv2.GaussianBlur(empty, (3, 3), 0))
    mask = np.where(diff > 22, 255, 0).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    return cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))


def candidates(frames: list[np.ndarray], empty: np.ndarray, step: int) -> list[tuple[int, int, int, int, int]]:
    """(frame, x, y, w, h) of lone, whole blobs the size of a standing person."""
    found = []
    for index in range(0, len(frames), step):
        n, _, stats, _ = cv2.connectedComponentsWithStats(foreground(frames[index], empty))
        for x, y, w, h, area in stats[1:]:
            if 90 <= h <= 200 and 0.25 <= w / h <= 0.55 and area > 0.35 * w * h and y > 2 and y + h < 574:
                found.append((index, int(x), int(y), int(w), int(h)))
    return found


def sprite(frame: np.ndarray, empty: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """BGRA crop of the largest foreground blob inside `box`, feathered edge."""
    x, y, w, h = box
    pad = 4
    x0, y0 = max(0, x - pad), max(0, y - pad)
    x1, y1 = min(frame.shape[1], x + w + pad), min(frame.shape[0], y + h + pad)
    mask = foreground(frame, empty)[y0:y1, x0:x1]
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if n < 2:
        raise SystemExit(f"no person in box {box}")
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = np.where(labels == biggest, 255, 0).astype(np.uint8)
    mask = cv2.GaussianBlur(mask, (3, 3), 0)
    ys, xs = np.nonzero(mask >= 128)
    crop = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    grey = frame[y0:y1, x0:x1][crop]
    alpha = mask[crop]
    return np.dstack([grey, grey, grey, alpha])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--list", action="store_true", help="print candidate boxes instead of writing")
    args = parser.parse_args()
    frames = read_frames(args.video)
    empty = background(frames)
    if args.list:
        for found in candidates(frames, empty, 20):
            print(found)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    for name, index, x, y, w, h in SPRITES:
        cv2.imwrite(str(args.out / f"{name}.png"), sprite(frames[index], empty, (x, y, w, h)), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"wrote {args.out / (name + '.png')}")


if __name__ == "__main__":
    main()
