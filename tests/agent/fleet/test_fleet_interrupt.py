"""Ctrl-C during a fleet replay on a pool of worker processes: the command stops at once, the
workers are ended, and the report it writes says it was interrupted and holds what finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.fleet.replay_fleet import EXIT_INTERRUPTED

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_ctrl_c_stops_the_pool_and_writes_a_partial_report(fleet_recordings: list[Path], tmp_path: Path) -> None:
    inputs = []
    for i in range(16):  # the same footage under 16 names: 16 tasks, far more than 4 s of work
        link = tmp_path / "in" / f"robot{i:02d}.mcap"
        link.parent.mkdir(exist_ok=True)
        os.link(fleet_recordings[i % len(fleet_recordings)], link)
        inputs.append(str(link))
    out = tmp_path / "report"
    process = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "replay", *inputs, "--workers", "2", "--report", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4.0)
    workers = [int(p) for p in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]
    assert len(workers) >= 2  # the pool's worker processes are running
    process.send_signal(signal.SIGINT)
    interrupted = time.monotonic()
    stdout, stderr = process.communicate(timeout=60)
    # The running replays are ended, not waited for (each takes several seconds here: letting
    # them finish took 20 s on the loaded 2-core CI machine; ending them, under 2 s).
    assert time.monotonic() - interrupted < 10.0
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr
    report = json.loads((out / "report.json").read_text())
    assert report["run"]["interrupted"] and report["run"]["finished"] < 16
    statuses = [r["A"]["status"] for r in report["recordings"]]
    assert statuses.count("not run (interrupted)") == 16 - report["run"]["finished"]
    assert "INTERRUPTED (Ctrl-C)" in stdout
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "a worker process outlived the command"
