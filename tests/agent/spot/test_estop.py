"""The agent's own E-Stop endpoint (`robot.register_estop`) never cuts someone else's power.

An operator's SDK client (a second process's worth of SDK: its own login and lease keep-alive)
takes the lease while the agent drives and keeps the robot standing. The agent stops commanding
at once; its E-Stop endpoint is the robot's only one, and the robot refuses to drop it while the
motors are on, so it keeps checking in until the operator powers off, then gives the robot back
the E-Stop configuration it found, and exits 5. The operator's robot keeps its power all along
and after the agent is gone.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from bosdyn.api import estop_pb2
from bosdyn.client.estop import EstopClient
from bosdyn.client.lease import LeaseClient, LeaseKeepAlive
from bosdyn.client.power import power_on_motors, safe_power_off_motors
from bosdyn.client.robot_command import RobotCommandClient, blocking_stand
from bosdyn.client.robot_state import RobotStateClient
from support.agent_process import AgentProcess

from agent.run import EXIT_LEASE_LOST
from configs import SHIPPED_DIR as CONFIG_DIR
from sim.server import SimServer
from sim.testing import close_sdk, connect_sdk
from sim.world import MotorPower, Posture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

ESTOP_TIMEOUT_S = 3.0  # the agent's endpoint: SETTLE_THEN_CUT after 3 s, CUT after 6 s


def powered_and_released(sim: SimServer) -> bool:
    return (sim.world.snapshot().motor_power == MotorPower.ON
            and sim.estop.level() == estop_pb2.ESTOP_LEVEL_NONE)


def hold_power(sim: SimServer, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert powered_and_released(sim), sim.estop.status().stop_level_details
        time.sleep(0.05)


def test_lease_taken_while_powered_keeps_the_operators_power_on(tmp_path: Path) -> None:
    sim = SimServer.start(scenario=CONFIG_DIR / "scenarios" / "empty.yaml", port=0)
    found = sim.estop.config()  # what the robot had before the agent came
    agent = AgentProcess(sim, tmp_path, **{"robot.estop_timeout_s": ESTOP_TIMEOUT_S})
    operator = connect_sdk(sim, "operator")
    keepalive: LeaseKeepAlive | None = None
    try:
        agent.wait_log("event=pipeline_started", 90)
        lease_client = operator.ensure_client(LeaseClient.default_service_name)
        lease_client.take()
        keepalive = LeaseKeepAlive(lease_client, rpc_interval_seconds=0.5)
        commands = operator.ensure_client(RobotCommandClient.default_service_name)
        blocking_stand(commands, timeout_sec=10)
        agent.wait_log("event=lease_lost", 10)
        # Well past the agent's E-Stop timeout (and its cut-power timeout): still powered.
        hold_power(sim, 3 * ESTOP_TIMEOUT_S)
        assert sim.world.snapshot().posture == Posture.STANDING
        assert agent.alive(), agent.log()[-3000:]
        assert "event=estop_kept" in agent.log()

        # The operator is done: sits and powers off. The agent hands the E-Stop back, exits.
        safe_power_off_motors(commands, operator.ensure_client(RobotStateClient.default_service_name),
                              timeout_sec=10)
        code = agent.wait(20)
        assert [e.name for e in sim.estop.config().endpoints] == [e.name for e in found.endpoints]
        # The robot is as the agent found it: the operator powers on again, with no E-Stop
        # endpoint of the agent's left to time out.
        assert operator.ensure_client(EstopClient.default_service_name).get_status().stop_level \
            == estop_pb2.ESTOP_LEVEL_NONE
        power_on_motors(operator.ensure_client("power"), timeout_sec=10)
        hold_power(sim, 3 * ESTOP_TIMEOUT_S)
    finally:
        if keepalive is not None:
            keepalive.shutdown()
        close_sdk(operator)
        agent.close()
        sim.stop()
    assert code == EXIT_LEASE_LOST, agent.log()[-3000:]
    assert "event=estop_restored" in agent.log()


def test_normal_exit_hands_the_estop_configuration_back(tmp_path: Path) -> None:
    sim = SimServer.start(scenario=CONFIG_DIR / "scenarios" / "empty.yaml", port=0)
    agent = AgentProcess(sim, tmp_path, "--duration", "3", **{"robot.estop_timeout_s": ESTOP_TIMEOUT_S})
    try:
        code = agent.wait(120)
        # Sat, powered off, lease returned, and no endpoint of the agent's left behind: another
        # client finds the robot not E-Stopped, as the agent found it.
        time.sleep(2 * ESTOP_TIMEOUT_S)
        status = sim.estop.status()
    finally:
        agent.close()
        sim.stop()
    assert code == 0, agent.log()[-3000:]
    assert status.stop_level == estop_pb2.ESTOP_LEVEL_NONE, status.stop_level_details
    assert not status.endpoints
