"""The agent's robot session across a robot restart and a long loss of contact.

`spot-agent run` runs as its own process against the sim. A restart (`SimServer.restart`: same
port, fresh robot: new tokens, lease epoch, E-Stop configuration, motors off) must be survived
with a rebuilt session (auth, time sync, E-Stop, lease) or end with exit 4 and the reason. A
loss of contact longer than the robot's own comms-loss timeout (the robot sits and powers off)
must end with exit 4 and the reason, unless the config explicitly lets the agent power on again.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest
from support.agent_process import AgentProcess, wait_for

from agent.run import EXIT_OK, EXIT_ROBOT_UNAVAILABLE
from configs import SHIPPED_DIR as CONFIG_DIR
from sim.server import SimServer
from sim.world import MotorPower, Posture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SCENARIO = CONFIG_DIR / "scenarios" / "empty.yaml"
CLIENT = "spot-cue-agent"


def wait_until_running(agent: AgentProcess, sim: SimServer) -> None:
    agent.wait_log("event=pipeline_started", 90)
    wait_for("the agent to stand the robot", lambda: agent_drives(sim) or not agent.alive(), 30)
    assert agent.alive(), agent.log()[-3000:]


def agent_drives(sim: SimServer) -> bool:
    holder = sim.leases.holder()
    body = sim.world.snapshot()
    return (
        holder is not None and holder.client_name.startswith(CLIENT)
        and body.motor_power == MotorPower.ON and body.posture == Posture.STANDING
    )


def reconnect_lines_carry_reasons(log: str) -> None:
    lines = [line for line in log.splitlines() if "event=reconnect_wait" in line or "event=connection_lost" in line]
    assert lines, "no reconnection was logged"
    for line in lines:
        assert re.search(r"reason=\S", line), f"a reconnect line without its reason: {line}"


def test_robot_restart_ends_the_run_with_exit_4_and_the_reason(tmp_path: Path) -> None:
    sim = SimServer.start(scenario=SCENARIO, port=0)
    agent = AgentProcess(sim, tmp_path)
    try:
        wait_until_running(agent, sim)
        sim = sim.restart()
        restarted = time.monotonic()
        code = agent.wait(60)
        took = time.monotonic() - restarted
    finally:
        agent.close()
        sim.stop()
    log = agent.log()
    print(f"robot restart -> agent exit {code} after {took:.1f} s")
    assert code == EXIT_ROBOT_UNAVAILABLE, log[-4000:]
    assert took <= 30.0
    # The reason, in words: the robot restarted and its motors are off.
    assert "spot-agent: " in log and "restarted" in log and "motors are off" in log, log[-4000:]
    reconnect_lines_carry_reasons(log)
    assert "Traceback" not in log


def test_robot_restart_is_survived_when_the_config_allows_powering_on(tmp_path: Path) -> None:
    sim = SimServer.start(scenario=SCENARIO, port=0)
    agent = AgentProcess(sim, tmp_path, **{"robot.on_motors_off": "power_on"})
    try:
        wait_until_running(agent, sim)
        sim = sim.restart()
        restarted = time.monotonic()
        wait_for("the agent to rebuild its session on the new robot",
                 lambda: agent_drives(sim) or not agent.alive(), 30)
        assert agent.alive(), agent.log()[-4000:]
        rebuilt_s = time.monotonic() - restarted
        # Its own E-Stop endpoint is registered on the new robot and checking in.
        estop = sim.estop.status()
        assert [e.endpoint.name for e in estop.endpoints] == [CLIENT]
        assert estop.stop_level == 4  # ESTOP_LEVEL_NONE
        time.sleep(2.0)  # keeps it (lease keep-alive, E-Stop check-ins on the new session)
        assert agent_drives(sim), agent.log()[-4000:]
        agent.send(signal.SIGINT)
        code = agent.wait(30)
        holder = sim.leases.holder()
    finally:
        agent.close()
        sim.stop()
    log = agent.log()
    print(f"robot restart -> session rebuilt and standing after {rebuilt_s:.1f} s")
    assert code == EXIT_OK, log[-4000:]
    assert holder is None, "the lease on the new robot was not returned"
    assert "event=session_rebuilt" in log
    reconnect_lines_carry_reasons(log)


def test_comms_loss_longer_than_the_robots_timeout_exits_4_with_the_reason(tmp_path: Path) -> None:
    # The robot's comms-loss timeout (its lease going stale) is shorter than the agent's own
    # E-Stop timeout here, so it is the robot's comms-loss behaviour that powers it off.
    sim = SimServer.start(scenario=SCENARIO, port=0, lease_timeout_s=3.0)
    agent = AgentProcess(sim, tmp_path)
    try:
        wait_until_running(agent, sim)
        sim.cut_network(True)
        wait_for("the robot to power off on comms loss",
                 lambda: sim.world.snapshot().motor_power == MotorPower.OFF, 15)
        time.sleep(1.0)
        sim.cut_network(False)
        back = time.monotonic()
        code = agent.wait(30)
        took = time.monotonic() - back
    finally:
        agent.close()
        sim.stop()
    log = agent.log()
    print(f"comms loss > robot timeout -> agent exit {code} {took:.1f} s after contact came back")
    assert code == EXIT_ROBOT_UNAVAILABLE, log[-4000:]
    assert took <= 15.0
    assert "motors are off" in log and "lost contact" in log, log[-4000:]
    reconnect_lines_carry_reasons(log)


def test_comms_loss_power_on_policy_stands_the_robot_again(tmp_path: Path) -> None:
    sim = SimServer.start(scenario=SCENARIO, port=0, lease_timeout_s=3.0)
    agent = AgentProcess(sim, tmp_path, **{"robot.on_motors_off": "power_on"})
    try:
        wait_until_running(agent, sim)
        sim.cut_network(True)
        wait_for("the robot to power off on comms loss",
                 lambda: sim.world.snapshot().motor_power == MotorPower.OFF, 15)
        sim.cut_network(False)
        wait_for("the agent to power on and stand again", lambda: agent_drives(sim) or not agent.alive(), 30)
        assert agent.alive(), agent.log()[-4000:]
        agent.send(signal.SIGINT)
        code = agent.wait(30)
    finally:
        agent.close()
        sim.stop()
    log = agent.log()
    assert code == EXIT_OK, log[-4000:]
    assert "event=powered_on_again" in log
