"""Recorded sim runs for the fleet tests, made once per session the way the replay tests make
theirs (`spot-agent run --record` on the simulated Spot: real TLS gRPC, real detector)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.demo import sim_agent_config
from agent.run import run_agent
from configs import SHIPPED_DIR as CONFIG_DIR
from sim.server import SimServer


def _record(folder: Path, scenario: str, rules: str, seconds: float) -> Path:
    """A live run, recorded whole (one file: a segment replayed alone ends with a stop its
    live run did not send there, so it cannot match the live commands)."""
    path = folder / f"{scenario}.mcap"
    sim = SimServer.start(scenario=CONFIG_DIR / "scenarios" / f"{scenario}.yaml", port=0)
    try:
        cfg = sim_agent_config(sim, rules=CONFIG_DIR / "rules" / f"{rules}.yaml")
        asyncio.run(run_agent(cfg, duration_s=seconds, stop_on_signals=False, record=path))
    finally:
        sim.stop()
    assert not list(folder.glob(f"{scenario}-*.mcap"))
    return path


@pytest.fixture(scope="session")
def fleet_recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A robot walking to a tag, one seeing a tag, a stop sign and a person, one seeing a stop sign."""
    folder = tmp_path_factory.mktemp("fleet")
    return [_record(folder, "fiducial_ahead", "fiducial", 4.0), _record(folder, "default", "default", 3.0),
            _record(folder, "stop_sign", "default", 3.0)]


@pytest.fixture(scope="session")
def corrupt_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MCAP file in name and magic only: nothing in it is readable."""
    path = tmp_path_factory.mktemp("bad") / "corrupt.mcap"
    path.write_bytes(b"\x89MCAP0\r\n" + bytes(range(256)) * 64)
    return path
