"""Replaying a fleet's recordings in parallel: the same per-recording results in this process,
in a pool of 2 worker processes and on a real local Ray cluster; a corrupt recording is
reported and the others finish; regression mode names the first differing command and its
frame; the command line writes the report and says how to install Ray when it is missing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from support.cli import command_app
from typer.testing import CliRunner

from agent.fleet.command import replay_command
from agent.fleet.executor import InProcessExecutor, PoolExecutor
from agent.fleet.replay_fleet import EXIT_DIFFER, EXIT_FAILED, FleetOptions, run_fleet
from agent.fleet.report import recordings_json

pytestmark = pytest.mark.slow


def summary_of(report: dict[str, Any]) -> str:
    from agent.fleet.summary import render_summary

    return render_summary(report)


def _options(paths: list[Path], **kw: Any) -> FleetOptions:
    base: dict[str, Any] = {"config": None, "rules": None, "mode": "auto", "fps": None,
                            "compare_config": None, "compare_rules": None, "workers": 1, "ray": None,
                            "report": None}
    return FleetOptions(paths, **{**base, **kw})


@pytest.fixture(scope="module")
def batch(fleet_recordings: list[Path], corrupt_recording: Path) -> list[Path]:
    return [*fleet_recordings[:2], corrupt_recording, *fleet_recordings[2:]]  # 3 runs, 1 corrupt


@pytest.fixture(scope="module")
def in_process(batch: list[Path]) -> dict[str, Any]:
    return run_fleet(_options(batch), InProcessExecutor())


def test_each_recording_is_replayed_and_a_corrupt_one_is_reported(
        in_process: dict[str, Any], batch: list[Path], corrupt_recording: Path) -> None:
    report = in_process
    assert [r["source"] for r in report["recordings"]] == [str(p) for p in batch]  # input order
    by_source = {r["source"]: r["A"] for r in report["recordings"]}
    bad = by_source.pop(str(corrupt_recording))
    assert bad["status"] == "failed" and "corrupt.mcap" in bad["error"] and "nothing readable" in bad["error"]
    for source, result in by_source.items():
        assert result["status"] == "ok", (source, result)
        assert result["mode"] == "recorded-run" and result["perception"]["frames_processed"] > 0
        live = result["vs_live"]  # what the robot did live vs the replay: a verdict, or where they part
        assert live["live"] > 0 and (live["matches"] or live["first_difference"].startswith("#")), live
    differ = sum(not r["vs_live"]["matches"] for r in by_source.values())
    assert report["totals"]["A"] == {**report["totals"]["A"], "recordings": len(batch), "failed": 1,
                                     "replayed": len(batch) - 1, "differ_from_live": differ,
                                     "not_run": 0, "no_frames": 0}
    fiducial = by_source[str(batch[0])]
    assert fiducial["rules_fired"].get("go_to_tag_1_and_sit") == 1
    assert fiducial["perception"]["detections_per_class"]["tag:1"] > 5
    assert fiducial["commands"]["by_kind"]["stand"] == 1
    # No wall-clock, host or process in what a recording's result holds: the run's are apart.
    assert "wall_s" not in recordings_json(report) and report["run"]["task_wall_s"]


def test_two_worker_processes_give_byte_identical_results(in_process: dict[str, Any], batch: list[Path]) -> None:
    pool = PoolExecutor(2)
    try:
        report = run_fleet(_options(batch, workers=2), pool)
    finally:
        pool.close()
    assert report["run"]["executor"] == "2 worker processes"
    assert recordings_json(report) == recordings_json(in_process)


def test_a_local_ray_cluster_gives_byte_identical_results(in_process: dict[str, Any], batch: list[Path]) -> None:
    """A real Ray cluster on this machine (2 CPUs, no dashboard): one Ray task per recording."""
    import ray

    from agent.fleet.ray_executor import RayExecutor

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        executor = RayExecutor("auto")  # the cluster this process is connected to
        assert executor.slots == 2
        report = run_fleet(_options(batch, ray="auto"), executor)
        executor.close()
    finally:
        ray.shutdown()
    assert report["run"]["executor"] == "ray auto" and report["run"]["finished"] == len(batch)
    assert recordings_json(report) == recordings_json(in_process)


def _cli(*args: str) -> Any:
    app = command_app("replay", replay_command)
    return CliRunner().invoke(app, ["replay", *args], terminal_width=250)


def test_regression_mode_names_the_first_differing_command_and_its_frame(
        fleet_recordings: list[Path], tmp_path: Path) -> None:
    """Same footage under the recorded rules (A) and the default rules (B): the tag run's
    commands change; the report says where, and which frame the engine had just seen."""
    out = tmp_path / "report"
    result = _cli(str(fleet_recordings[0]), "--compare-rules", "default", "--workers", "1", "--report", str(out))
    assert result.exit_code == EXIT_DIFFER, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["totals"]["regressions"] == 1
    regression = report["recordings"][0]["regression"]
    assert regression["differs"]
    a, b = regression["A"], regression["B"]
    assert a != b and (a is None or b is None or (a["command"], a["time"]) != (b["command"], b["time"]))
    deciding = min((c for c in (a, b) if c is not None), key=lambda c: c["time"])
    frame = regression["frame"]  # the frame the engine had just seen when the sides parted
    assert frame == deciding["frame"] and frame["camera"].endswith("_image") and frame["time"] > 0
    summary = (out / "summary.txt").read_text()
    assert "regressions: 1 of 1 recordings" in summary
    assert f"#{regression['index']}: A " in summary and f"after {frame['camera']} #{frame['seq']}" in summary
    assert summary in result.output


def test_cli_fleet_exit_code_and_folders(fleet_recordings: list[Path], corrupt_recording: Path) -> None:
    folder = fleet_recordings[0].parent  # a folder stands for the recordings in it
    result = _cli(str(folder), str(corrupt_recording), "--workers", "1")
    # One unreadable (exit 1), unless a replay differs from its live run (exit 6 first).
    assert result.exit_code == (EXIT_DIFFER if "DIFFERS from live" in result.output else EXIT_FAILED), result.output
    for path in [*(p for p in fleet_recordings if p.parent == folder), corrupt_recording]:
        assert str(path) in result.output
    assert "FAILED" in result.output and "same as live" in result.output


def test_ray_option_without_ray_says_how_to_install_it(
        fleet_recordings: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as when not installed
    result = _cli(*map(str, fleet_recordings[:2]), "--ray", "auto")
    assert result.exit_code == 2
    assert "pip install 'spot-cue-agent[cluster]'" in result.output
