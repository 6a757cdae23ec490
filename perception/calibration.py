"""Score calibration: one score scale for every model, so a rule's `min_score` means one thing.

Two detectors score the same person very differently: NanoDet-g's true people score 0.35-0.6,
MoveNet's 0.1-0.3. The shared scale is the COCO detector's own (the one every rule and threshold
was written in): a person model's raw score is mapped to the COCO detector's score that
false-alarms as often, measured on real grey frames (the labelled dev set,
`bench/bench_person_devset.py`: at each raw threshold, the share of images with a false person
box). So `min_score: 0.5` on a person cue asks the same of both models: no more false-person
frames than NanoDet-g gives at 0.5.

A calibration is a monotone piecewise-linear curve through measured (raw, calibrated) knots.
Below the lowest measured raw score the curve drops to 0 (nothing is vouched for there); above
the highest it rises linearly to (1, 1). A class without a curve keeps its raw score (the COCO
detector, the reference, has none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

Knots = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class ScoreCurve:
    """Raw score -> calibrated score, through (raw, calibrated) knots, both increasing."""

    knots: Knots

    def __post_init__(self) -> None:
        raw = [k[0] for k in self.knots]
        cal = [k[1] for k in self.knots]
        if len(self.knots) < 2:
            raise ValueError("a score curve needs at least two (raw, calibrated) knots")
        if any(b <= a for a, b in zip(raw, raw[1:])):
            raise ValueError(f"raw scores of a curve must increase: {raw}")
        if any(b < a for a, b in zip(cal, cal[1:])):
            raise ValueError(f"calibrated scores of a curve must not decrease: {cal}")
        if not all(0.0 <= v <= 1.0 for v in raw + cal):
            raise ValueError("scores must lie in [0, 1]")

    def __call__(self, raw: float) -> float:
        xs, ys = zip(*self.knots)
        return float(np.interp(raw, xs, ys))

    def onto(self, reference: ScoreCurve) -> ScoreCurve:
        """This model's raw score -> the reference model's raw score with the same calibrated
        value (both curves map raw score to the same measured quantity), rising to (1, 1)."""
        knots = [(raw, reference.raw_for(value)) for raw, value in self.knots]
        knots = [(r, min(v, 1.0)) for r, v in knots]
        if knots[-1][0] < 1.0:
            knots.append((1.0, 1.0))
        # Equal reference scores for neighbouring knots are fine; raw must still increase.
        return ScoreCurve(tuple(knots))

    def raw_for(self, calibrated: float) -> float:
        """The lowest raw score that calibrates to at least `calibrated` (1.01 if none does):
        what a model must keep so that nothing above a calibrated threshold is lost."""
        xs, ys = zip(*self.knots)
        if calibrated <= ys[0]:
            return 0.0  # everything at or below the first knot calibrates to ys[0]
        if calibrated > ys[-1]:
            return 1.01
        for (x0, y0), (x1, y1) in zip(self.knots, self.knots[1:]):
            if y0 < calibrated <= y1:
                return float(x0 + (x1 - x0) * (calibrated - y0) / (y1 - y0))
        return 1.01  # unreachable: the knots cover (ys[0], ys[-1]]


@dataclass(frozen=True)
class ScoreCalibration:
    """Per-class curves for one model; classes without a curve keep their raw score."""

    curves: Mapping[str, ScoreCurve] = field(default_factory=dict)

    @classmethod
    def from_knots(cls, knots: Mapping[str, Sequence[Sequence[float]]]) -> ScoreCalibration:
        return cls({label: ScoreCurve(tuple((float(r), float(c)) for r, c in k)) for label, k in knots.items()})

    def __call__(self, label: str, raw: float) -> float:
        curve = self.curves.get(label)
        return curve(raw) if curve is not None else raw

    def raw_threshold(self, calibrated: float) -> float:
        """The raw score a model must keep so no class loses a box calibrated >= `calibrated`."""
        return min([calibrated, *(c.raw_for(calibrated) for c in self.curves.values())])

    @property
    def is_identity(self) -> bool:
        return not self.curves
