"""What an evaluation writes: report.json (every number), a PR curve per class (PNG) and
report.html (self-contained: CSS inline, the curves and thumbnails as files beside it), with
one column per side and, when two sides are compared, their difference."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.eval.dataset import Dataset
from agent.eval.inference import Inference, load_image
from agent.eval.metrics import AP_KEYS, ClassResult, Counts, Example
from agent.eval.subject import Subject


@dataclass
class Run:
    subject: Subject
    inference: Inference
    classes: dict[str, ClassResult]


def report_json(dataset: Dataset, runs: list[Run]) -> dict[str, Any]:
    return {
        "dataset": {"paths": dataset.sources, "images": len(dataset.images),
                    "boxes": dataset.annotation_count, "ignored_regions": dataset.ignored_count,
                    "classes": dataset.classes, "notes": dataset.notes},
        "runs": [_run_json(r) for r in runs],
        "match_iou": 0.5,
    }


def _run_json(run: Run) -> dict[str, Any]:
    return {
        "name": run.subject.name, **run.subject.files,
        "seconds": round(run.inference.seconds, 3), "workers": run.inference.workers,
        "classes": {label: {
            "threshold": c.threshold, "threshold_from": c.threshold_from, "coco": c.ap,
            "at_threshold": c.at_threshold,
            "by_size": {k: v.as_dict() for k, v in c.by_size.items()},
            "by_distance": {k: v.as_dict() for k, v in c.by_distance.items()},
            "by_visibility": {k: v.as_dict() for k, v in c.by_visibility.items()},
            "pr_points": c.pr_points,
        } for label, c in run.classes.items()},
    }


def write_report(out: Path, dataset: Dataset, runs: list[Run]) -> None:
    (out / "report.json").write_text(json.dumps(report_json(dataset, runs), indent=2) + "\n")
    curves = {label: plot_curves(out, label, runs) for label in dataset.classes}
    thumbs = {(r.subject.name, label): _thumbnails(out, dataset, r, label)
              for r in runs for label in dataset.classes}
    (out / "report.html").write_text(_html(dataset, runs, curves, thumbs), encoding="utf-8")


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or "class"


def plot_curves(out: Path, label: str, runs: list[Run]) -> str:
    """PR curve of `label` for every run, the agent's operating point marked; the PNG's name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for run, colour in zip(runs, ("tab:blue", "tab:orange")):
        c = run.classes[label]
        if c.curve:
            ax.plot([p[1] for p in c.curve], [p[2] for p in c.curve], color=colour,
                    label=f"{run.subject.name}: AP50 {_fmt(c.ap['AP50'])}")
        r, p = c.at_threshold["recall"], c.at_threshold["precision"]
        if p is not None:
            ax.plot([r], [p], "o", color=colour, label=f"{run.subject.name} at {c.threshold:g}")
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="recall", ylabel="precision", title=f"{label} (IoU 0.5)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no detection of this class", ha="center", va="center")
    name = f"pr_{slug(label)}.png"
    fig.savefig(out / name)
    plt.close(fig)
    return name


def _thumbnails(out: Path, dataset: Dataset, run: Run, label: str) -> list[tuple[str, str]]:
    """(file, caption) for the worst misses and false boxes of `label`, boxes drawn."""
    import cv2

    from perception.annotate import draw_detections

    c = run.classes[label]
    by_id = {im.id: im for im in dataset.images}
    (out / "thumbs").mkdir(exist_ok=True)
    made = []
    for kind, examples in (("miss", c.misses), ("false", c.false_boxes)):
        for n, ex in enumerate(examples):
            image = by_id[ex.image_id]
            kept = [d for d in run.inference.detections[ex.image_id] if d.score >= c.threshold]
            drawn = draw_detections(load_image(image.file), kept)
            _mark(drawn, ex)
            scale = min(1.0, 320 / max(drawn.shape[:2]))
            small = cv2.resize(drawn, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            name = f"thumbs/{run.subject.name}_{slug(label)}_{kind}_{n}.jpg"
            cv2.imwrite(str(out / name), small, [cv2.IMWRITE_JPEG_QUALITY, 85])
            what = f"missed {label}" if ex.score is None else f"false {label} {ex.score:.2f}"
            made.append((name, f"{what}: {image.file.name}"))
    return made


def _mark(image: Any, ex: Example) -> None:
    """The labelled box missed (magenta) or the false box (white, dashed by thickness)."""
    import cv2

    x1, y1, x2, y2 = (int(round(v)) for v in ex.box)
    colour = (255, 0, 255) if ex.score is None else (255, 255, 255)
    cv2.rectangle(image, (x1 - 3, y1 - 3), (x2 + 3, y2 + 3), colour, 2)


def _fmt(v: float | None, digits: int = 3) -> str:
    if isinstance(v, int):  # counts
        return str(v)
    return "-" if v is None else f"{v:.{digits}f}"


def _rows(runs: list[Run], label: str) -> list[tuple[str, list[float | None]]]:
    """(metric, value per run) for the class table."""
    cs = [r.classes[label] for r in runs]
    rows: list[tuple[str, list[float | None]]] = [(k, [c.ap[k] for c in cs]) for k in AP_KEYS]
    rows.append(("threshold", [c.threshold for c in cs]))
    for key in ("recall", "precision", "false_image_rate", "false_positives"):
        rows.append((f"{key} at threshold", [c.at_threshold[key] for c in cs]))
    for group in ("by_size", "by_distance", "by_visibility"):
        for bucket in getattr(cs[0], group):
            counts: list[Counts | None] = [getattr(c, group).get(bucket) for c in cs]
            rows.append((f"recall, {bucket}", [x.recall if x else None for x in counts]))
            if group == "by_size":
                rows.append((f"precision, {bucket}", [x.precision if x else None for x in counts]))
    return rows


def _table(runs: list[Run], label: str) -> str:
    head = "".join(f"<th>{html.escape(r.subject.name)}</th>" for r in runs) + ("<th>B - A</th>" if len(runs) == 2 else "")
    body = []
    for metric, values in _rows(runs, label):
        cells = "".join(f"<td>{_fmt(v)}</td>" for v in values)
        if len(values) == 2:
            a, b = values
            delta = None if a is None or b is None else b - a
            sign = "" if delta is None or abs(delta) < 1e-12 else (" class='up'" if delta > 0 else " class='down'")
            cells += f"<td{sign}>{'-' if delta is None else f'{delta:+.3f}'}</td>"
        body.append(f"<tr><th>{html.escape(metric)}</th>{cells}</tr>")
    return f"<table><tr><th>{html.escape(label)}</th>{head}</tr>{''.join(body)}</table>"


STYLE = """body{font-family:sans-serif;margin:1.5em;max-width:1100px}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th:first-child{text-align:left}
.up{color:#070}.down{color:#b00}figure{display:inline-block;margin:4px}figcaption{font-size:11px;max-width:320px}
code{background:#f4f4f4}"""


def _html(dataset: Dataset, runs: list[Run], curves: dict[str, str],
          thumbs: dict[tuple[str, str], list[tuple[str, str]]]) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>spot-agent eval</title><style>{STYLE}</style>",
             "</head><body><h1>Perception on labelled footage</h1>",
             f"<p>{len(dataset.images)} images, {dataset.annotation_count} boxes to find, "
             f"{dataset.ignored_count} ignore regions: {html.escape(', '.join(dataset.sources))}. "
             "A hit is IoU &ge; 0.5 with a labelled box; ignore regions count neither way. AP is COCO's "
             "(pycocotools) on the boxes the agent's perception keeps (its score_threshold).</p>"]
    parts += [f"<p><b>note:</b> {html.escape(note)}</p>" for note in dataset.notes]
    for run in runs:
        models = ", ".join(f"{m['role']} <code>{html.escape(Path(m['path']).name)}</code> "
                           f"({(m['sha256'] or '?')[:12]})" for m in run.subject.files["models"])
        parts.append(f"<p><b>{run.subject.name}</b>: <code>{html.escape(run.subject.files['config'])}</code>, "
                     f"{models}; {run.inference.seconds:.1f} s on {run.inference.workers} workers.</p>")
    for label in dataset.classes:
        parts.append(f"<h2>{html.escape(label)}</h2>")
        for run in runs:
            parts.append(f"<p>{run.subject.name}: threshold {run.classes[label].threshold:g} "
                         f"({html.escape(run.classes[label].threshold_from)})</p>")
        parts.append(_table(runs, label))
        parts.append(f"<img class='curve' src='{curves[label]}' alt='PR curve {html.escape(label)}'>")
        for run in runs:
            shots = thumbs[(run.subject.name, label)]
            if shots:
                parts.append(f"<h3>{run.subject.name}: worst misses and false boxes</h3>")
                parts += [f"<figure><img class='thumb' src='{name}'><figcaption>{html.escape(cap)}</figcaption></figure>"
                          for name, cap in shots]
    parts.append("</body></html>")
    return "\n".join(parts)
