"""Frames out for labelling: upright PNGs plus the agent's own detections as COCO pre-labels.

Every input is read by replay's own readers (`agent.replay.sources`: recordings, damaged or not,
videos, image folders), so what replay can read can be exported, and what it loses is reported
the same way. Frames are sampled per camera by their own timestamps (one every `every` seconds
of recording time), turned upright as the agent turns that camera, and perceived there, so the
boxes are in the exported image's pixels and a labeller corrects them instead of drawing them.

Nothing is half-written: everything goes into a hidden folder beside `out`, renamed to `out`
only when at least one frame was exported (`labels.json` last).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from agent.replay.coco_labels import CocoLabels
from agent.replay.images import decode_image
from agent.replay.reading import ReplayInputError
from agent.replay.sources import open_replay_source
from perception.config import DetectorConfig, camera_in_name
from perception.frame import Frame
from perception.perceiver import Perceiver
from perception.rotation import upright_rotation

LABELS_FILE = "labels.json"


@dataclass
class InputExport:
    """What one input gave: frames read and exported, boxes, what was lost, or why it failed."""

    source: str  # the input's file name
    kind: str = ""  # "mcap", "video", "images"; "" when it could not be opened
    frames_read: int = 0
    exported: int = 0
    boxes: int = 0
    problems: list[str] = field(default_factory=list)
    error: str | None = None  # set when the input was skipped


@dataclass
class ExportResult:
    out: Path
    inputs: list[InputExport]
    seconds: float = 0.0

    @property
    def exported(self) -> int:
        return sum(i.exported for i in self.inputs)

    @property
    def boxes(self) -> int:
        return sum(i.boxes for i in self.inputs)


@dataclass(frozen=True)
class ExportOptions:
    every_s: float = 1.0  # at most one frame per camera per this many seconds of frame time
    config: str | None = None  # --config; None: a recording's own, else the shipped agent config
    cameras: frozenset[str] | None = None  # export only these cameras
    camera: str | None = None  # the camera of a video or image folder (else from its file names)
    fps: float | None = None  # an image folder's (or a video's) frame rate


class Sampler:
    """One frame per camera every `every_s` seconds of the frames' own time.

    A frame older than the camera's last exported one starts the camera's sampling afresh (the
    next input, or a recording whose clock went back), instead of skipping it for good.
    """

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._last: dict[str, float] = {}

    def due(self, camera: str, t: float) -> bool:
        last = self._last.get(camera)
        # 0.1 ms of slack: frame times are ~1.8e9 s, where a float's step is ~2e-7 s, so
        # `start + 5 / 10` may land a hair before `start + 0.5`.
        if last is not None and last <= t < last + self.every_s - 1e-4:
            return False
        self._last[camera] = t
        return True


def _full_resolution(data: bytes) -> np.ndarray | None:
    # Labels belong on the camera's full image: a recording's JPEGs are decoded whole, not
    # reduced the way the live agent may have decoded them for its detector.
    return decode_image(data)


class _Exporter:
    """The state of one export: output folder, labels, names used, sampler, perceivers."""

    def __init__(self, folder: Path, options: ExportOptions) -> None:
        self.folder = folder
        self.options = options
        self.labels = CocoLabels()
        self.sampler = Sampler(options.every_s)
        self._names: set[str] = set()
        self._perceivers: dict[str, Perceiver] = {}

    def perceiver(self, config: DetectorConfig) -> Perceiver:
        key = config.model_dump_json()
        if key not in self._perceivers:
            self._perceivers[key] = Perceiver(config)
        return self._perceivers[key]

    def name_for(self, camera: str, seq: int) -> str:
        name = f"{camera}_{seq:06d}.png"
        n = 1
        while name in self._names:  # two inputs with the same camera and numbers
            name, n = f"{camera}_{seq:06d}_{n}.png", n + 1
        self._names.add(name)
        return name

    def camera_of(self, frame: Frame, kind: str) -> str:
        """A folder's image named after a Spot camera is that camera's (unless --camera)."""
        if kind == "images" and self.options.camera is None:
            named = camera_in_name(str(frame.extra.get("file", "")))
            if named is not None:
                return named
        return frame.camera

    def export_frame(self, frame: Frame, camera: str, perceiver: Perceiver, source: str) -> int:
        """Write one frame upright with its pre-labels; the number of boxes."""
        h, w = frame.image.shape[:2]
        upright = upright_rotation(perceiver.config.rotation_for(camera), w, h).apply(frame.image)
        name = self.name_for(camera, frame.seq)
        # Lossless: the labelled pixels are the ones the pre-labels were detected on, so `eval`
        # on the export re-finds exactly those boxes (a JPEG re-encode moved a borderline one).
        if not cv2.imwrite(str(self.folder / name), upright):
            raise OSError(f"{self.folder / name}: could not write the PNG")
        uh, uw = upright.shape[:2]
        image_id = self.labels.add_image(name, (uw, uh), camera=camera,
                                         time=frame.acquisition_time_robot, source=source)
        seen = Frame(camera, upright, 0.0, 0.0)
        detections = perceiver.detect_objects(seen, rotation_deg=0.0)
        return self.labels.add_detections(image_id, detections, perceiver.find_fiducials(seen))


def _detector_config(path: Path, options: ExportOptions) -> DetectorConfig:
    """The detector an input is perceived with: --config's, else the one a recording ran with,
    else the shipped agent's (replay's own resolution). `ConfigError` if unusable."""
    from agent.recording.metadata import recording_header
    from agent.replay.config import resolve_replay_config

    header = recording_header(path) if path.is_file() else None
    chosen = resolve_replay_config(path.name, header, options.config, None)
    try:
        return chosen.config.detector
    finally:
        chosen.close()


async def _export_input(path: Path, exporter: _Exporter, result: InputExport) -> None:
    """Every due frame of one input. Raises `ReplayInputError` / `ConfigError` if unusable."""
    options = exporter.options
    perceiver = exporter.perceiver(_detector_config(path, options))
    source = open_replay_source(
        path, fps=options.fps, camera=options.camera or camera_in_name(path.name),
        decode=_full_resolution,
    )
    result.kind = source.report.kind
    try:
        async for frame in source.frames():
            if frame.is_depth:
                continue  # depth is for localisation, not for labelling
            camera = exporter.camera_of(frame, result.kind)
            if options.cameras is not None and camera not in options.cameras:
                continue
            if not exporter.sampler.due(camera, frame.acquisition_time_robot):
                continue
            where = f"{path.name}/{frame.extra['file']}" if "file" in frame.extra else path.name
            result.boxes += exporter.export_frame(frame, camera, perceiver, where)
            result.exported += 1
    finally:
        await source.close()
    result.frames_read = source.report.frames
    result.problems = [f"{p.where}: {p.what}" for p in source.report.problems]
    if not source.report.readable and not source.report.complete:  # a segment without frames is fine
        result.error = source.report.nothing_readable()


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out}: exists and is not an empty folder; choose another --out")


async def export_frames(paths: list[Path], out: Path, options: ExportOptions) -> ExportResult:
    """Export every input's due frames into `out` (created; must not exist or be empty).

    An input that cannot be read at all (or whose configuration is unusable) is reported in its
    `InputExport.error` and skipped. `out` appears only when something was exported.
    """
    from configs.loading import ConfigError

    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    partial.mkdir()
    result = ExportResult(out, [])
    start = time.perf_counter()
    exporter = _Exporter(partial, options)
    try:
        for path in paths:
            one = InputExport(path.name)
            result.inputs.append(one)
            try:
                await _export_input(path, exporter, one)
            except (ReplayInputError, ConfigError) as exc:
                one.error = str(exc)
        result.seconds = time.perf_counter() - start
        if result.exported:
            (partial / LABELS_FILE).write_text(json.dumps(exporter.labels.to_json()), encoding="utf-8")
            _check_out(out)  # nobody made it meanwhile
            os.replace(partial, out)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return result
