"""The agent's perception on every labelled image, on every core.

Each worker process builds one `Perceiver` from the detector config (interpreters cannot be
shared between processes) and runs `detect_objects` exactly as the agent does on a frame from
the image's camera. Results come back keyed by image id, so they do not depend on the number of
workers or on which finishes first. Interpreters run single-threaded here: the processes are the
parallelism, and one thread count for every worker count keeps the numbers identical.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agent.eval.dataset import DatasetError, EvalImage
from perception.config import DetectorConfig
from perception.detection import Detection

_perceiver = None  # this worker process's own Perceiver


@dataclass(frozen=True)
class Inference:
    detections: dict[int, list[Detection]]  # image id -> what the agent's perception found
    seconds: float
    workers: int


def load_image(file: Path) -> np.ndarray:
    """The image as the cameras give it: grey if it is grey (also when stored as 3 equal
    channels), else BGR as stored. `DatasetError` if it cannot be decoded."""
    import cv2

    image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
    if image is None or image.dtype != np.uint8:
        raise DatasetError(f"{file}: cannot be decoded as an 8-bit image")
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and np.array_equal(image[:, :, 0], image[:, :, 1]) and np.array_equal(image[:, :, 0], image[:, :, 2]):
        image = np.ascontiguousarray(image[:, :, 0])
    return image


def _init_worker(config: DetectorConfig) -> None:
    global _perceiver
    from perception.perceiver import Perceiver

    _perceiver = Perceiver(config)


def detect_image(image: EvalImage) -> tuple[int, list[Detection]]:
    from perception.frame import Frame

    assert _perceiver is not None, "worker not initialised"
    frame = Frame(image.camera, load_image(image.file), 0.0, 0.0)
    found = _perceiver.detect_objects(frame, rotation_deg=0.0 if image.upright else None)
    # AprilTags as the agent sees them, labelled `tag:<id>` as export-frames and the rules name
    # them; found in the image as given, so their boxes are in its pixels like the labels.
    tags = [Detection(t.label, t.tag_id, 1.0, t.box) for t in _perceiver.find_fiducials(frame)]
    return image.id, found + tags


def eval_config(config: DetectorConfig) -> DetectorConfig:
    """The config the workers run: the agent's, interpreters single-threaded (results must not
    depend on the worker count)."""
    return config.model_copy(update={"num_threads": 1})


def run_perception(
    config: DetectorConfig, images: Sequence[EvalImage], workers: int, title: str = "detecting"
) -> Inference:
    """Detections for every image, with a progress bar on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    config = eval_config(config)
    found: dict[int, list[Detection]] = {}
    start = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(title, total=len(images))
        if workers <= 1:
            _init_worker(config)
            for image in images:
                image_id, dets = detect_image(image)
                found[image_id] = dets
                progress.advance(task)
        else:
            # spawn: the parent runs the progress bar's thread; forking a threaded process is unsafe.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, context, _init_worker, (config,)) as pool:
                futures = [pool.submit(detect_image, image) for image in images]
                try:
                    for future in as_completed(futures):
                        image_id, dets = future.result()
                        found[image_id] = dets
                        progress.advance(task)
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)  # an unreadable image: stop now
                    raise
    ordered = {image.id: found[image.id] for image in images}
    return Inference(ordered, time.perf_counter() - start, max(1, workers))
