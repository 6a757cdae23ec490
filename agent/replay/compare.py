"""A replay's commands against the live run's: same kinds in order, same parameters, same times.

This is the check that a recording replays faithfully (`replay` exits 6 when it fails), so it
names the first difference in words rather than only counting them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from behaviors.commands import MotionCommand, command_to_dict


@dataclass
class CommandComparison:
    """How a replay's commands compare with the live run's."""

    live: int
    replayed: int
    same_kinds_in_order: bool
    max_param_diff: float
    max_time_diff_s: float
    first_difference: str = ""  # the first command that differs (kind, parameter or time)
    time_tolerance_s: float = 0.0

    @property
    def identical(self) -> bool:
        return self.same_kinds_in_order and self.max_param_diff == 0.0 and self.max_time_diff_s == 0.0

    @property
    def matches(self) -> bool:
        """Same commands, same order, same parameters, each within `time_tolerance_s` of its live
        time (one control period: a command one tick later is a different decision)."""
        return (
            self.same_kinds_in_order
            and self.max_param_diff == 0.0
            and self.max_time_diff_s <= self.time_tolerance_s
        )


def _differences(i: int, t_live: float, d_live: dict[str, Any], t_rep: float, d_rep: dict[str, Any],
                 time_tolerance_s: float) -> tuple[str, float]:
    """The first difference between two commands of the same kind, and their largest parameter
    difference."""
    first, max_param = "", 0.0
    for key, value in d_live.items():
        other = d_rep.get(key)
        if isinstance(value, (int, float)) and isinstance(other, (int, float)):
            diff = abs(float(value) - float(other))
        else:
            diff = 0.0 if value == other else math.inf
        if diff > 0.0:
            first = first or f"#{i} {d_live.get('kind')}: {key} live {value!r} vs replay {other!r}"
        max_param = max(max_param, diff)
    if not first and abs(t_live - t_rep) > time_tolerance_s:
        first = (f"#{i} {d_live.get('kind')}: live at {t_live:.3f} s vs replay at {t_rep:.3f} s "
                 f"({abs(t_live - t_rep) * 1000:.0f} ms apart)")
    return first, max_param


def compare_commands(
    live: list[tuple[float, MotionCommand]],
    replayed: list[tuple[float, MotionCommand]],
    time_tolerance_s: float = 0.0,
) -> CommandComparison:
    """Live vs replayed (time, command) lists: kinds in order, parameters, times; the first
    difference in words."""
    same = [c.kind for _, c in live] == [c.kind for _, c in replayed]
    max_param, max_time, first = 0.0, 0.0, ""
    for i, ((t_live, c_live), (t_rep, c_rep)) in enumerate(zip(live, replayed)):
        d_live, d_rep = command_to_dict(c_live), command_to_dict(c_rep)
        if d_live.get("kind") != d_rep.get("kind"):
            first = first or f"#{i}: live {d_live} vs replay {d_rep}"
            continue
        max_time = max(max_time, abs(t_live - t_rep))
        difference, param = _differences(i, t_live, d_live, t_rep, d_rep, time_tolerance_s)
        first, max_param = first or difference, max(max_param, param)
    if len(live) != len(replayed) and not first:
        n = min(len(live), len(replayed))
        extra = (f"#{n}: live {command_to_dict(live[n][1])} was not replayed" if len(live) > n
                 else f"#{n}: replay {command_to_dict(replayed[n][1])} was not sent live")
        first = f"live sent {len(live)} commands, replay {len(replayed)}; {extra}"
    return CommandComparison(len(live), len(replayed), same, max_param, max_time, first,
                             time_tolerance_s)
