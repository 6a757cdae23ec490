"""`spot-agent eval`: measure the agent's perception (and its thresholds) on labelled footage.

Exit codes: 0 done; 2 bad input (labels, images, config, model), with the file and the entry
named and nothing written. The report is built in a temporary folder beside DIR and renamed
into place at the end, so DIR is never half-written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from agent.eval.dataset import Dataset
    from agent.eval.report import Run
    from agent.eval.subject import Subject

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def eval_command(
    data: list[Path] = typer.Argument(..., help="COCO JSON files and/or YOLO folders (images/ + labels/)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for report.json, report.html and the curves."),
    config: str = typer.Option("agent", "--config", "-c", help="Agent config (file or shipped name): "
                               "its detector, person model, calibration and rules' thresholds."),
    model: Path | None = typer.Option(None, "--model", help="Run this detector model instead of the config's."),
    labels: Path | None = typer.Option(None, "--labels", help="Labels file of --model (one a line)."),
    compare_config: str | None = typer.Option(None, "--compare-config", help="Second agent config: side B."),
    compare_model: Path | None = typer.Option(None, "--compare-model", help="Second detector model: side B."),
    compare_labels: Path | None = typer.Option(None, "--compare-labels", help="Labels file of --compare-model."),
    images: Path | None = typer.Option(None, "--images", help="Folder COCO file names are relative to "
                                       "(default: the JSON file's folder)."),
    workers: int = typer.Option(0, "--workers", "-j", help="Worker processes (default: every core)."),
    ray: str | None = typer.Option(None, "--ray", help="Detect on a Ray cluster: auto, ray://HEAD:10001 "
                                   "or local (pip install 'spot-cue-agent[cluster]')."),
) -> None:
    """Measure perception on labelled images: COCO AP per class, recall and precision at the
    agent's thresholds (by size and distance), PR curves, worst misses; --compare-* adds side B."""
    from rich.console import Console

    from agent.eval.dataset import DatasetError
    from agent.eval.loading import load_dataset
    from agent.eval.subject import load_subject
    from agent.fleet.ray_executor import RayMissing
    from configs.loading import ConfigError

    err = Console(stderr=True)
    try:
        import matplotlib  # noqa: F401
        import pycocotools  # noqa: F401
    except ImportError as exc:
        err.print(f"spot-agent eval needs the eval extra: pip install 'spot-cue-agent[eval]' ({exc})",
                  highlight=False, markup=False)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    try:
        dataset = load_dataset(data, images)
        subjects = [load_subject("A", config, model, labels)]
        if compare_config is not None or compare_model is not None:
            subjects.append(load_subject("B", compare_config or config, compare_model, compare_labels))
        _check_out(out)
    except (DatasetError, ConfigError) as exc:
        _error(err, exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    try:
        runs = _measure(dataset, subjects, workers or os.cpu_count() or 1, ray)
        _write(out, dataset, runs)
    except (DatasetError, RayMissing) as exc:  # an image that passed its header check but cannot be decoded
        _error(err, exc)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except KeyboardInterrupt:
        err.print("spot-agent eval: interrupted (Ctrl-C); nothing written", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    _print_summary(Console(), runs, dataset.notes, out)


def _error(console: Console, exc: Exception) -> None:
    from rich.markup import escape

    # escape: messages quote the user's labels ("[x, y, width, height]"), not rich markup.
    console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)


def _check_out(out: Path) -> None:
    """DIR may be new, empty, or an earlier report (replaced whole): never someone's other files."""
    from configs.loading import ConfigError

    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "report.json").is_file())):
        raise ConfigError(f"--out {out}: exists and is not an eval report folder; choose another")


def _measure(dataset: Dataset, subjects: list[Subject], workers: int, ray: str | None) -> list[Run]:
    from agent.fleet.choose import make_executor

    executor = make_executor(min(workers, len(dataset.images)), ray)
    try:
        return [_measure_side(dataset, subject, executor) for subject in subjects]
    finally:
        executor.close()


def _measure_side(dataset: Dataset, subject: Subject, executor: Any) -> Run:
    from agent.eval.inference import run_perception
    from agent.eval.metrics import coco_ap, evaluate_class
    from agent.eval.report import Run

    for label in dataset.classes:
        found_by_fiducials = label.startswith("tag:") and subject.detector.fiducials
        if label not in subject.model_labels and not found_by_fiducials:
            dataset.notes.append(f"{subject.name}: no model outputs '{label}': every such box is a miss")
    inference = run_perception(subject.detector, dataset.images, executor, f"{subject.name}: detecting")
    ap = coco_ap(dataset, inference.detections)
    classes = {label: evaluate_class(dataset, inference.detections, label, subject.threshold_for(label), ap[label])
               for label in dataset.classes}
    return Run(subject, inference, classes)


def _write(out: Path, dataset: Dataset, runs: list[Run]) -> None:
    from agent.eval.report import write_report

    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_report(tmp, dataset, runs)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "report")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _print_summary(console: Console, runs: list[Run], notes: list[str], out: Path) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="perception on labelled footage (IoU 0.5)")
    for col in ("side", "class", "AP", "AP50", "threshold", "recall", "precision", "false-box images"):
        table.add_column(col)
    for run in runs:
        for label, c in run.classes.items():
            a = c.at_threshold
            table.add_row(run.subject.name, label, _f(c.ap["AP"]), _f(c.ap["AP50"]), f"{c.threshold:g}",
                          _f(a["recall"]), _f(a["precision"]), f"{a['images_with_false']}/{a['images']}")
    console.print(table)
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}")
    console.print(f"report: {out / 'report.html'}  ({', '.join(f'{r.subject.name} {r.inference.seconds:.1f} s' for r in runs)})")


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"
