"""`spot-agent run` as a separate process against a sim in the test process, for tests that
kill, signal or cut off the agent the way the world does (kill -9, SIGTERM, a robot restart).

`MotionTrace` records the sim body's speed at every physics step, stamped with the robot clock,
so stop times are measured where the robot measures them, not on a test thread's schedule.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from agent.config import config_overrides
from agent.demo import sim_agent_config
from sim.server import SimServer
from sim.world import NSEC_PER_SEC, SimWorld

ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", "PYTHONUNBUFFERED": "1"}


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class MotionTrace:
    """(robot time, linear speed, yaw rate) of the sim body, one sample per physics step.

    The hook runs at the start of each step and reads the velocity the previous step left, so a
    stop is stamped at most one physics step late: measurements err on the strict side.
    """

    STILL = 1e-3  # m/s and rad/s: the sim's acceleration limit brings speeds to exactly zero

    def __init__(self, world: SimWorld) -> None:
        self._world = world
        self._lock = threading.Lock()
        self.samples: list[tuple[int, float, float]] = []
        world.add_tick_hook(self._on_step)

    def _on_step(self, now_ns: int) -> None:
        body = self._world.snapshot()
        with self._lock:
            self.samples.append((now_ns, math.hypot(body.vx, body.vy), body.wz))

    def still_since(self, after_ns: int) -> int | None:
        """Robot time from which the body stayed still (after `after_ns`), or None if it moves."""
        with self._lock:
            samples = [s for s in self.samples if s[0] >= after_ns]
        since: int | None = None
        for t, speed, wz in samples:
            if speed < self.STILL and abs(wz) < self.STILL:
                since = t if since is None else since
            else:
                since = None
        return since

    def seconds_to_still(self, after_ns: int) -> float | None:
        since = self.still_since(after_ns)
        return None if since is None else (since - after_ns) / NSEC_PER_SEC


class AgentProcess:
    """`python -m agent.cli run` on `sim` with configs/sim.yaml (plus overrides), logs to a file."""

    def __init__(
        self,
        sim: SimServer,
        workdir: Path,
        *args: str,
        rules: str | Path | None = None,
        log_level: str = "info",
        max_file_bytes: int | None = None,
        **overrides: Any,
    ) -> None:
        self.sim = sim
        cfg = config_overrides(sim_agent_config(sim, rules=rules), **overrides)
        self.config_path = workdir / "agent.yaml"
        self.config_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
        self.log_path = workdir / "agent.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(self.config_path),
             "--log-level", log_level, *args],
            stdout=self._log, stderr=subprocess.STDOUT, text=True, env=ENV,
            preexec_fn=None if max_file_bytes is None else lambda: _limit_file_size(max_file_bytes),
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, sig: signal.Signals) -> None:
        os.kill(self.process.pid, sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"the agent did not exit within {timeout} s:\n{self.log()[-4000:]}") from exc

    def wait_log(self, text: str, timeout: float) -> None:
        wait_for(f"{text!r} in the agent's log", lambda: text in self.log() or not self.alive(), timeout)
        assert text in self.log(), f"the agent exited ({self.process.returncode}) without {text!r}:\n{self.log()[-4000:]}"

    def close(self) -> None:
        """Stop the agent if it still runs (SIGKILL: tests that care signal it themselves)."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._log.close()


def _limit_file_size(max_bytes: int) -> None:
    """In the child: writes past `max_bytes` fail with EFBIG (a full disk, as far as a writer can
    tell) instead of killing the process with SIGXFSZ."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
