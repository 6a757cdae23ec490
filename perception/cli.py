"""`spot-agent detect PATH... --out DIR`: try a model on images, folders and videos.

Writes an annotated image per processed frame to DIR and one JSON line per detection to
DIR/detections.jsonl: {"file", "frame", "label", "score", "box": [x1, y1, x2, y2]} in pixels of
the original image; fiducials have "label": "tag:<id>" plus their "pose" (null without
intrinsics). Unreadable inputs are reported and skipped; the exit code is non-zero only when
nothing at all could be read.

Inputs come from anywhere: every image is size-checked before it is decoded
(`perception.decode.decode_bounded`, `MAX_IMAGE_PIXELS`), and file names that are not valid
UTF-8 are never handed to OpenCV (its path conversion crashes on them): images are read and
written as bytes (`imdecode`, `imencode` + `tofile`), videos opened through /proc/self/fd, and
the names shown and written use `readable()`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from perception.image_size import MAX_IMAGE_PIXELS

_CAMERA_HINT = ("pass --camera (e.g. frontleft_fisheye_image, frontright_fisheye_image) "
                "or name the files after the camera")


def body_tilt_deg(keypoints: tuple[tuple[float, float, float], ...] | None) -> float | None:
    """How far a person's body axis leans from the image's up (degrees, + = head to the right),
    from COCO keypoints: hips to shoulders (the torso, steadiest), else shoulders to nose; None
    without confident ones."""
    if not keypoints or len(keypoints) < 13:
        return None

    def mid(*idx: int) -> tuple[float, float] | None:
        points = [keypoints[i] for i in idx]
        if min(p[2] for p in points) < 0.2:  # the pose model's keypoint scores run low (0.2-0.6)
            return None
        return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)

    shoulders, hips = mid(5, 6), mid(11, 12)
    lower, upper = (hips, shoulders) if hips is not None and shoulders is not None else (shoulders, mid(0))
    if lower is None or upper is None:
        return None
    return math.degrees(math.atan2(upper[0] - lower[0], lower[1] - upper[1]))


# Frames of an input (with no camera) checked for looking sideways: each check costs two more
# detector runs, and a video's camera does not turn.
SIDEWAYS_CHECK_FRAMES = 3
SIDEWAYS_MIN_SCORE = 0.5  # people counted when a quarter turn is tried: the person rules' bar
SIDEWAYS_TILT_DEG = 60.0  # the people's median lean beyond which a frame is taken to lie on its side

if TYPE_CHECKING:
    import numpy as np
    from rich.console import Console

    from perception.config import DetectorConfig
    from perception.detection import Detection, FiducialDetection
    from perception.frame import Frame, PinholeIntrinsics
    from perception.perceiver import Perceiver

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm"}
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
EXIT_NOTHING_READABLE = 1
EXIT_BAD_SETUP = 2


class UnreadableInput(Exception):
    """An input file that is not a decodable image or video."""


@dataclass
class InputReport:
    path: Path
    frames: int = 0
    objects: int = 0
    tags: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    sideways: bool = False  # a frame looked sideways (said once per input)


def _expand(paths: list[Path]) -> tuple[list[Path], list[InputReport]]:
    """Files to process (folders listed sorted, one level) and reports for what is skipped."""
    files: list[Path] = []
    skipped: list[InputReport] = []
    for p in paths:
        if p.is_dir():
            for child in sorted(p.iterdir()):
                if not child.is_file():
                    continue
                if child.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
                    files.append(child)
        elif p.is_file():
            files.append(p)
        else:
            skipped.append(InputReport(p, error="no such file or folder"))
    return files, skipped


def readable(text: str | Path) -> str:
    """A file name as valid, printable UTF-8: each byte that is not UTF-8 (kept by Python as a
    surrogate escape) and each control character written as %XX. For output file names, the
    JSON lines and the terminal; OpenCV and rich both fail on the raw name."""
    out = []
    for ch in str(text):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's escape of the byte code - 0xDC00
            out.append(f"%{code - 0xDC00:02X}")
        elif not ch.isprintable() or 0xD800 <= code <= 0xDFFF:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        else:
            out.append(ch)
    return "".join(out)


def _read_image(path: Path, max_pixels: int) -> np.ndarray:
    from perception.decode import FrameDecodeError, decode_bounded

    size = path.stat().st_size
    if size > max_pixels * 4 + 1024 * 1024:  # more bytes than any image within the limit needs
        raise UnreadableInput(f"file of {size} bytes is too large for an image")
    try:
        return decode_bounded(path.read_bytes(), max_pixels=max_pixels)
    except FrameDecodeError as exc:
        raise UnreadableInput(_reason_text(exc)) from None


def _reason_text(exc: Exception) -> str:
    from perception.decode import FrameDecodeError

    if not isinstance(exc, FrameDecodeError):
        return str(exc)
    words = {"empty_data": "empty file", "unknown_format": "not a decodable image"}
    if exc.reason in words:
        return words[exc.reason]
    return f"{exc.reason.replace('_', ' ')}: {exc.detail}" if exc.detail else exc.reason


@contextlib.contextmanager
def _opencv_path(path: Path) -> Iterator[str]:
    """A name of `path` that OpenCV can take: the path itself when it is valid UTF-8, else the
    open file's /proc/self/fd entry (Linux)."""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        fd = os.open(path, os.O_RDONLY)
        try:
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    yield name


def _frames(path: Path, every: int, max_pixels: int) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, BGR image) for an image (index 0) or each `every`-th video frame."""
    suffix = path.suffix.lower()
    if suffix not in VIDEO_EXTENSIONS:
        try:
            yield 0, _read_image(path, max_pixels)
            return
        except UnreadableInput:
            if suffix in IMAGE_EXTENSIONS:
                raise
    with _opencv_path(path) as name:
        yield from _video_frames(name, every, max_pixels)


def _video_frames(name: str, every: int, max_pixels: int) -> Iterator[tuple[int, np.ndarray]]:
    import cv2

    from perception.decode import FrameDecodeError, check_pixels

    capture = cv2.VideoCapture(name)
    try:
        if not capture.isOpened():
            raise UnreadableInput("not a readable image or video")
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        try:
            check_pixels(width, height, max_pixels)
        except FrameDecodeError as exc:
            raise UnreadableInput(_reason_text(exc)) from None
        index = 0
        produced = False
        while True:
            ok, image = capture.read()
            if not ok:
                break
            if index % every == 0:
                produced = True
                yield index, image
            index += 1
        if not produced:
            raise UnreadableInput("video has no readable frames")
    finally:
        capture.release()


def _pose_json(tag: FiducialDetection) -> dict[str, Any] | None:
    if not tag.has_pose:
        return None
    return {
        "camera_t_tag": [round(float(v), 4) for v in tag.camera_t_tag],
        "camera_R_tag": [[round(float(v), 5) for v in row] for row in tag.camera_R_tag],
        "size_m": tag.size_m,
        "distance_m": round(tag.distance, 4),
    }


def _lines(file: str, frame: int, dets: list[Detection], tags: list[FiducialDetection]) -> Iterator[str]:
    for d in dets:
        box = [round(v, 2) for v in d.box]
        record: dict[str, Any] = {"file": file, "frame": frame, "label": d.label, "score": round(d.score, 4),
                                  "box": box, "model": d.model}
        if d.keypoints is not None:
            record["keypoints"] = [[round(x, 1), round(y, 1), round(k, 3)] for x, y, k in d.keypoints]
        yield json.dumps(record)
    for t in tags:
        box = [round(v, 2) for v in t.box]
        record = {"file": file, "frame": frame, "label": t.label, "score": 1.0, "box": box}
        record["corners"] = [[round(float(x), 2), round(float(y), 2)] for x, y in t.corners]
        record["pose"] = _pose_json(t)
        yield json.dumps(record)


def _parse_intrinsics(text: str | None) -> PinholeIntrinsics | None:
    from perception.frame import PinholeIntrinsics

    if text is None:
        return None
    try:
        fx, fy, cx, cy = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise typer.BadParameter("expected fx,fy,cx,cy (four numbers)", param_hint="--intrinsics") from exc
    if fx <= 0 or fy <= 0:
        raise typer.BadParameter("focal lengths must be > 0", param_hint="--intrinsics")
    return PinholeIntrinsics(fx, fy, cx, cy)


def _build_config(config: Path | None, overrides: dict[str, Any]) -> DetectorConfig:
    from pydantic import ValidationError

    from perception.config import DetectorConfig

    try:
        base = DetectorConfig.from_yaml(config) if config is not None else DetectorConfig()
        data = base.model_dump()
        data.update({k: v for k, v in overrides.items() if v is not None})
        return DetectorConfig.model_validate(data)
    except (ValidationError, ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--config / options") from exc


def detect_command(
    paths: Annotated[list[Path], typer.Argument(help="Images, image folders or video files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for annotated images and detections.jsonl.")],
    model: Annotated[Path | None, typer.Option(help="TFLite model (default: shipped NanoDet-g COCO).")] = None,
    labels: Annotated[Path | None, typer.Option(help="Labels file, one a line.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML with a detector section (DetectorConfig).")] = None,
    score: Annotated[float | None, typer.Option(help="Score threshold.")] = None,
    iou: Annotated[float | None, typer.Option(help="NMS IoU threshold.")] = None,
    threads: Annotated[int | None, typer.Option(help="Interpreter threads.")] = None,
    decoder: Annotated[str | None, typer.Option(help="auto | nanodet | ssd | yolo.")] = None,
    tag_size: Annotated[float | None, typer.Option(help="AprilTag black-square edge, metres.")] = None,
    intrinsics: Annotated[
        str | None, typer.Option(help="fx,fy,cx,cy of the images (gives tag poses).")
    ] = None,
    camera: Annotated[
        str | None, typer.Option(help="Spot camera the images come from (applies its upright rotation).")
    ] = None,
    every: Annotated[int, typer.Option(min=1, help="Video: process every N-th frame.")] = 1,
    fiducials: Annotated[bool, typer.Option("--fiducials/--no-fiducials", help="Look for AprilTags.")] = True,
    max_pixels: Annotated[
        int, typer.Option(min=1, help="Skip images (and videos) with more pixels than this.")
    ] = MAX_IMAGE_PIXELS,
) -> None:
    """Run the detector (and fiducials) on images, folders or videos; write annotated images + JSONL."""
    from rich.console import Console

    console = Console()
    overrides = {
        "model": model,
        "labels": labels,
        "score_threshold": score,
        "iou_threshold": iou,
        "num_threads": threads,
        "decoder": decoder,
        "tag_size_m": tag_size,
        "fiducials": fiducials,
    }
    cfg = _build_config(config, overrides)
    k = _parse_intrinsics(intrinsics)
    perceiver = _load_perceiver(cfg, console)
    out.mkdir(parents=True, exist_ok=True)
    files, reports = _expand(paths)
    with (out / "detections.jsonl").open("w", encoding="utf-8") as jsonl:
        run = _DetectRun(perceiver, out, jsonl, camera or "", k, every, max_pixels)
        reports.extend(run.process(path) for path in files)
    models = " + ".join(f"{m.name} ({getattr(m.detector, 'decoder_name', '?')})" for m in perceiver.models)
    _print_summary(console, reports, out, models)
    if fiducials and k is None and any(r.tags for r in reports):
        console.print("tag poses need the camera: pass --intrinsics fx,fy,cx,cy")
    if not any(r.frames for r in reports):
        raise typer.Exit(EXIT_NOTHING_READABLE)


def _load_perceiver(cfg: DetectorConfig, console: Console) -> Perceiver:
    """The model loaded, or a one-line setup error and exit 2 (never a traceback)."""
    from perception.decoders import UnsupportedModelError
    from perception.detector import ModelIntegrityError, NoInterpreterError
    from perception.perceiver import Perceiver

    try:
        return Perceiver(cfg)
    except (UnsupportedModelError, ModelIntegrityError, NoInterpreterError, FileNotFoundError, ValueError) as exc:
        console.print(f"[red]cannot load the model:[/red] {exc}")
        raise typer.Exit(EXIT_BAD_SETUP) from exc


@dataclass
class _DetectRun:
    """One `detect` run's output: the annotated images in `out` and the lines of `jsonl`."""

    perceiver: Perceiver
    out: Path
    jsonl: TextIO
    camera: str
    intrinsics: PinholeIntrinsics | None
    every: int
    max_pixels: int
    used_names: set[str] = field(default_factory=set)

    def process(self, path: Path) -> InputReport:
        """Every frame of one input; an unreadable input (or its unreadable rest) is reported."""
        from perception.config import camera_in_name

        report = InputReport(path)
        camera = self.camera or camera_in_name(path.name) or ""
        if camera and not self.camera:
            report.notes.append(f"camera {camera} (from the file name): turned upright "
                                f"by {self.perceiver.config.rotation_for(camera):g} deg")
        try:
            for index, image in _frames(path, self.every, self.max_pixels):
                self._process_frame(path, index, image, report, camera)
        except (UnreadableInput, OSError) as exc:
            if report.frames:
                report.notes.append(f"stopped early: {exc}")
            else:
                report.error = str(exc)
        return report

    def _process_frame(self, path: Path, index: int, image: np.ndarray, report: InputReport, camera: str) -> None:
        import cv2

        from perception.annotate import annotate
        from perception.frame import Frame

        frame = Frame(camera=camera, image=image, acquisition_time_robot=0.0,
                      acquisition_time_local=0.0, intrinsics=self.intrinsics, seq=index)
        dets = self.perceiver.detect_objects(frame)
        if not camera and report.frames < SIDEWAYS_CHECK_FRAMES and not report.sideways:
            self._check_sideways(frame, dets, report)
        tags = self.perceiver.find_fiducials(frame)
        for line in _lines(readable(path), index, dets, tags):
            self.jsonl.write(line + "\n")
        name = _unique_name(path, index, path.suffix.lower() in VIDEO_EXTENSIONS, self.used_names)
        ok, jpeg = cv2.imencode(".jpg", annotate(image, dets, tags))
        if ok:  # written by numpy: the output folder's name may not be UTF-8 either
            jpeg.tofile(self.out / name)
        report.frames += 1
        report.objects += len(dets)
        report.tags += len(tags)

    def _check_sideways(self, frame: Frame, found: list[Detection], report: InputReport) -> None:
        """A frame with no camera is taken as upright. Spot's front cameras are mounted sideways,
        and sideways people are mostly missed (0 of 15 on real frames), so say so when a person's
        skeleton lies on its side, or when turning the frame a quarter finds more people."""
        # The people's typical lean, not one person's: players and bending people lean 40-50 deg, a
        # small far skeleton can be off by more; a frame turned by Spot's front mounts lies ~78 deg.
        tilts = sorted((t for d in found if (t := body_tilt_deg(d.keypoints)) is not None), key=abs)
        tilt = tilts[len(tilts) // 2] if tilts else None
        if tilt is not None and abs(tilt) > SIDEWAYS_TILT_DEG:
            report.sideways = True
            report.notes.append(f"frame {frame.seq} looks sideways: people lie at {tilt:+.0f} deg; "
                                f"{_CAMERA_HINT}")
            return
        def people(dets: list[Detection]) -> int:  # sure ones only: a turned frame's clutter looks like people
            return sum(d.label == "person" and d.score >= SIDEWAYS_MIN_SCORE for d in dets)

        upright = people(found)
        for angle in (-90.0, 90.0):
            turned = people(self.perceiver.detect_objects(frame, rotation_deg=angle))
            if turned > upright:
                report.sideways = True
                report.notes.append(f"frame {frame.seq} looks sideways: {turned} person(s) when turned "
                                    f"{angle:+g} deg, {upright} upright; {_CAMERA_HINT}")
                return


def _print_summary(console: Console, reports: list[InputReport], out: Path, models: str) -> None:
    """A table of the inputs, each skipped input on one copyable line, and the totals."""
    from rich.table import Table

    out_text = readable(out)
    table = Table(title=f"spot-agent detect -> {out_text}")
    for col in ("input", "frames", "objects", "tags", "status"):
        table.add_column(col, justify="right" if col in ("frames", "objects", "tags") else "left")
    for r in reports:
        status = f"[red]skipped: {r.error}[/red]" if r.error else ("ok" + "".join(f"; {n}" for n in r.notes))
        table.add_row(readable(r.path), str(r.frames), str(r.objects), str(r.tags), status)
    console.print(table)
    for r in reports:
        if r.error:  # also as one unwrapped line each: the full path stays copyable
            console.print(f"skipped {readable(r.path)}: {r.error}", soft_wrap=True, markup=False)
    read_ok = [r for r in reports if r.frames]
    console.print(
        f"{len(read_ok)}/{len(reports)} inputs read, {sum(r.frames for r in reports)} frames, "
        f"{sum(r.objects for r in reports)} objects, {sum(r.tags for r in reports)} tags "
        f"(models: {models}); "
        f"detections in {out_text}/detections.jsonl"
    )


def _unique_name(path: Path, index: int, is_video: bool, used: set[str]) -> str:
    stem = readable(path.stem)
    stem = f"{stem}_{index:06d}" if is_video else stem
    name, n = f"{stem}.jpg", 1
    while name in used:
        name, n = f"{stem}_{n}.jpg", n + 1
    used.add(name)
    return name
