"""Many replay inputs from a command line: files, folders and globs, expanded in a fixed order.

A folder holding recordings or videos (at any depth) stands for those files; a folder with
neither is one input itself (a folder of images replays as one). The order is the order of the
arguments, each expanded in sorted order, duplicates dropped: the same arguments give the same
list on every machine, which is what keeps a fleet report the same whatever the parallelism.
"""

from __future__ import annotations

import glob
from pathlib import Path

RECORDING_SUFFIXES = {".mcap"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v"}
_GLOB_CHARS = set("*?[")


def expand_inputs(args: list[str]) -> list[Path]:
    """The inputs `args` name, in order. A path that does not exist and matches nothing is kept
    as it is: its replay reports it missing, the others go on."""
    found: list[Path] = []
    for arg in args:
        if _GLOB_CHARS & set(arg) and not Path(arg).exists():
            matches = [Path(m) for m in sorted(glob.glob(arg, recursive=True))]
            for match in matches or [Path(arg)]:
                found.extend(_expand_path(match))
        else:
            found.extend(_expand_path(Path(arg)))
    unique: dict[Path, None] = dict.fromkeys(found)
    return list(unique)


def _expand_path(path: Path) -> list[Path]:
    if not path.is_dir():
        return [path]
    media = sorted(
        p for p in path.rglob("*")
        if p.is_file() and p.suffix.lower() in RECORDING_SUFFIXES | VIDEO_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    return media or [path]
