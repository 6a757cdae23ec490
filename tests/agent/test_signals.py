"""Stop signals, sent for real to `spot-agent run` in its own process, at awkward moments.

Whatever the moment, a stop goes through the clean-up: the robot stopped and powered off (the
sim config registers the agent's own E-Stop, so it powers off on exit), the lease returned,
the E-Stop configuration handed back, the recording closed with its summary and footer.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from bosdyn.client.lease import LeaseClient, LeaseKeepAlive
from bosdyn.client.robot_command import RobotCommandClient, blocking_stand
from mcap.reader import make_reader
from support.agent_process import AgentProcess, wait_for

from agent.run import EXIT_OK
from agent.shutdown import FORCE_EXIT_S
from configs import SHIPPED_DIR as CONFIG_DIR
from sim.server import SimServer
from sim.testing import close_sdk, connect_sdk
from sim.world import MotorPower, Posture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SCENARIO = CONFIG_DIR / "scenarios" / "fiducial_ahead.yaml"
MCAP_MAGIC = b"\x89MCAP0\r\n"


def agent_holds_lease(sim: SimServer) -> bool:
    holder = sim.leases.holder()
    return holder is not None and holder.client_name.startswith("spot-cue-agent")


def assert_given_back(sim: SimServer, agent: AgentProcess) -> None:
    """Motors off, no lease held, no E-Stop endpoint of the agent's left on the robot."""
    assert sim.world.snapshot().motor_power == MotorPower.OFF, agent.log()[-3000:]
    assert sim.leases.holder() is None, "the lease was not returned"
    assert not sim.estop.config().endpoints, "the agent's E-Stop endpoint was left behind"


def assert_complete_mcap(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(MCAP_MAGIC) and data.endswith(MCAP_MAGIC), f"{path} is not closed"
    with path.open("rb") as f:
        assert make_reader(f).get_summary() is not None


def test_sigterm_during_start_up_unwinds_everything(tmp_path: Path) -> None:
    sim = SimServer.start(scenario=SCENARIO, port=0)
    record = tmp_path / "run.mcap"
    agent = AgentProcess(sim, tmp_path, "--record", str(record))
    try:
        # The moment the agent holds the lease it is still powering on and standing up.
        wait_for("the agent to acquire the lease", lambda: agent_holds_lease(sim) or not agent.alive(),
                 90, every=0.002)
        agent.send(signal.SIGTERM)
        signalled = time.monotonic()
        code = agent.wait(30)
        took = time.monotonic() - signalled
        assert_given_back(sim, agent)
    finally:
        agent.close()
        sim.stop()
    print(f"SIGTERM during start-up: clean exit {took:.1f} s later")
    assert code == EXIT_OK, agent.log()[-3000:]
    assert "event=stopped_during_startup" in agent.log()
    # Closed: complete, or removed when nothing was recorded yet; either way the next
    # `--record` to the same path works.
    if record.exists():
        assert_complete_mcap(record)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_second_signal_during_shutdown_skips_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    sim = SimServer.start(scenario=SCENARIO, port=0)
    record = tmp_path / "run.mcap"
    agent = AgentProcess(sim, tmp_path, "--record", str(record))
    try:
        agent.wait_log("event=pipeline_started", 90)
        wait_for("the robot to walk to the tag", lambda: sim.world.snapshot().vx > 0.2 or not agent.alive(), 30)
        agent.send(sig)
        # Once the robot sits down the agent is powering it off; then it returns the lease,
        # hands the E-Stop back and closes the recording: signal again now.
        wait_for("the robot to sit down", lambda: sim.world.snapshot().posture == Posture.SITTING_DOWN,
                 10, every=0.005)
        agent.send(sig)
        code = agent.wait(30)
        assert_given_back(sim, agent)
    finally:
        agent.close()
        sim.stop()
    log = agent.log()
    assert code == EXIT_OK, log[-3000:]
    assert_complete_mcap(record)
    assert "event=already_stopping" in log and "event=lease_returned" in log


def test_third_signal_ends_the_estop_hand_back_wait_and_exits_within_the_bound(tmp_path: Path) -> None:
    # An operator took the lease with the motors on: the agent waits, as the E-Stop client, for
    # them to power off. Two signals do not end that wait (it keeps the operator's power on);
    # a third does, and the process is gone within FORCE_EXIT_S.
    sim = SimServer.start(scenario=CONFIG_DIR / "scenarios" / "empty.yaml", port=0)
    agent = AgentProcess(sim, tmp_path)
    operator = connect_sdk(sim, "operator")
    keepalive: LeaseKeepAlive | None = None
    try:
        agent.wait_log("event=pipeline_started", 90)
        lease_client = operator.ensure_client(LeaseClient.default_service_name)
        lease_client.take()
        keepalive = LeaseKeepAlive(lease_client, rpc_interval_seconds=0.5)
        blocking_stand(operator.ensure_client(RobotCommandClient.default_service_name), timeout_sec=10)
        agent.wait_log("event=estop_kept", 20)
        # (One at a time: the kernel merges a signal sent while the same one is pending.)
        agent.send(signal.SIGTERM)
        agent.wait_log("event=stop_requested", 10)
        agent.send(signal.SIGTERM)
        agent.wait_log("event=already_stopping", 10)
        time.sleep(1.0)
        assert agent.alive() and sim.world.snapshot().motor_power == MotorPower.ON
        agent.send(signal.SIGTERM)
        forced = time.monotonic()
        agent.wait(FORCE_EXIT_S + 5.0)
        took = time.monotonic() - forced
    finally:
        if keepalive is not None:
            keepalive.shutdown()
        close_sdk(operator)
        agent.close()
        sim.stop()
    assert took <= FORCE_EXIT_S + 1.0
    assert "event=stop_forced" in agent.log() and "event=estop_abandoned" in agent.log()


def test_a_recording_that_fills_the_disk_ends_a_clean_run_with_exit_6(tmp_path: Path) -> None:
    """The robot run is not disturbed; the exit code says the recording is incomplete."""
    from agent.run import EXIT_RECORDING_FAILED

    sim = SimServer.start(scenario=SCENARIO, port=0)
    record = tmp_path / "run.mcap"
    # 1.5 MB per file: the agent's log (a file here) stays far below; the recording does not.
    agent = AgentProcess(sim, tmp_path, "--record", str(record), "--duration", "8",
                         max_file_bytes=1_500_000)
    try:
        code = agent.wait(120)
    finally:
        agent.close()
        sim.stop()
    log = agent.log()
    assert code == EXIT_RECORDING_FAILED, log[-3000:]
    assert log.count("recording stopped") <= 3, "one clear event, not a flood"
    assert "spot-agent: recording stopped: file size limit reached" in log
    assert "reason=duration" in log  # the run itself went to its end
