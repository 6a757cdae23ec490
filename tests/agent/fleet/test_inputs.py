"""Many replay inputs from a command line: folders stand for the recordings and videos in them
(at any depth), a folder of images is one input, globs expand sorted, duplicates drop out, and
a missing path is kept so its replay reports it."""

from __future__ import annotations

from pathlib import Path

from agent.fleet.inputs import expand_inputs


def test_folders_globs_and_files_expand_in_a_fixed_order(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    for name in ["robot2/day1/run.mcap", "robot1/run-001.mcap", "robot1/run.mcap", "robot1/clip.MP4",
                 "robot1/notes.txt", "robot1/.hidden/old.mcap"]:
        (fleet / name).parent.mkdir(parents=True, exist_ok=True)
        (fleet / name).write_bytes(b"x")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"x")
    args = [str(fleet), str(photos), str(tmp_path / "fleet" / "robot1" / "*.mcap"), str(tmp_path / "missing.mcap")]
    assert expand_inputs(args) == [
        fleet / "robot1/clip.MP4", fleet / "robot1/run-001.mcap", fleet / "robot1/run.mcap",
        fleet / "robot2/day1/run.mcap",
        photos,  # a folder of images replays as one input
        tmp_path / "missing.mcap",  # the glob's matches were listed already: not twice
    ]
    assert expand_inputs([str(fleet / "**" / "run.mcap")]) == [fleet / "robot1/run.mcap", fleet / "robot2/day1/run.mcap"]
