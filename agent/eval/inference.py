"""The agent's perception on every labelled image, on every core.

Images go in chunks to the fleet executor (`agent.fleet`: this process, a pool of worker
processes, or a Ray cluster); each worker process builds one `Perceiver` from the detector
config (interpreters cannot be shared between processes) and runs `detect_objects` exactly as the agent does on a frame from
the image's camera. Results come back keyed by image id, so they do not depend on the number of
workers or on which finishes first. Interpreters run single-threaded here: the processes are the
parallelism, and one thread count for every worker count keeps the numbers identical.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


_perceiver_config: str | None = None  # the config `_perceiver` was built from

CHUNK_IMAGES = 16  # images per task: worth a task's overhead (a pool's pickling, a Ray round trip)


@dataclass(frozen=True)
class DetectChunk:
    """A task: some images, and the detector config to run on them."""

    config: DetectorConfig
    images: tuple[EvalImage, ...]


def _perceiver_for(config: DetectorConfig) -> Any:
    """This process's Perceiver for `config`, built once (a worker runs many chunks)."""
    global _perceiver, _perceiver_config
    key = config.model_dump_json()
    if _perceiver is None or _perceiver_config != key:
        from perception.perceiver import Perceiver

        _perceiver, _perceiver_config = Perceiver(config), key
    return _perceiver


def detect_chunk(chunk: DetectChunk) -> list[tuple[int, list[Detection]]]:
    perceiver = _perceiver_for(chunk.config)
    return [detect_image(perceiver, image) for image in chunk.images]


def detect_image(perceiver: Any, image: EvalImage) -> tuple[int, list[Detection]]:
    from perception.frame import Frame

    frame = Frame(image.camera, load_image(image.file), 0.0, 0.0)
    found = perceiver.detect_objects(frame, rotation_deg=0.0 if image.upright else None)
    # AprilTags as the agent sees them, labelled `tag:<id>` as export-frames and the rules name
    # them; found in the image as given, so their boxes are in its pixels like the labels.
    tags = [Detection(t.label, t.tag_id, 1.0, t.box) for t in perceiver.find_fiducials(frame)]
    return image.id, found + tags


def eval_config(config: DetectorConfig) -> DetectorConfig:
    """The config the workers run: the agent's, interpreters single-threaded (results must not
    depend on the worker count)."""
    return config.model_copy(update={"num_threads": 1})


def run_perception(
    config: DetectorConfig, images: Sequence[EvalImage], executor: Any, title: str = "detecting"
) -> Inference:
    """Detections for every image on `executor` (`agent.fleet`: this process, a pool or a Ray
    cluster), with a progress bar on stderr. An image that cannot be decoded raises
    `DatasetError`; Ctrl-C raises `KeyboardInterrupt` once the workers are ended."""
    from agent.fleet.batch import run_batch
    from agent.fleet.executor import TaskFailed

    config = eval_config(config)
    chunks = [DetectChunk(config, tuple(images[i:i + CHUNK_IMAGES])) for i in range(0, len(images), CHUNK_IMAGES)]
    start = time.perf_counter()
    outcome = run_batch(executor, detect_chunk, chunks, title=title, weights=[len(c.images) for c in chunks])
    if outcome.interrupted:
        raise KeyboardInterrupt
    found: dict[int, list[Detection]] = {}
    for index, result in outcome.results.items():
        if isinstance(result, TaskFailed):
            raise DatasetError(f"images {chunks[index].images[0].file.name}...: {result.message}")
        found.update(result)
    ordered = {image.id: found[image.id] for image in images}
    return Inference(ordered, time.perf_counter() - start, executor.slots)
