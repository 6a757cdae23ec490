"""Operator control end to end: the simulated Spot in this process, `spot-agent run` in a
second process driving it over TLS gRPC, and `spot-agent op ...` in further processes, as on
the robot's payload and an operator's laptop.

The world has AprilTag 1 straight ahead, so the default rules start a cue behavior (walk to
the tag and sit) as soon as the agent sees it; the operator then takes over.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from support.ports import free_payload_port, free_port_pair

from agent.control.client import AgentUnreachable, ControlClient
from agent.control.protocol import MAX_REQUEST_BYTES
from agent.demo import sim_agent_config
from configs import SHIPPED_DIR as CONFIG_DIR
from sim.server import SimServer
from sim.world import Posture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def wait_for(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Agent:
    def __init__(self, sim: SimServer, endpoint: str, process: subprocess.Popen[str], live_view_port: int) -> None:
        self.sim, self.endpoint, self.process = sim, endpoint, process
        self.live_view_port = live_view_port

    def op(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agent.cli", "op", "--endpoint", self.endpoint, *args],
            capture_output=True, text=True, timeout=timeout, env=ENV,
        )

    def op_background(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "op", "--endpoint", self.endpoint, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
        )

    def status(self) -> dict[str, Any] | None:
        with ControlClient(self.endpoint, timeout_s=1.0) as client:
            try:
                reply = client.request("status")
            except AgentUnreachable:
                return None
        return reply.result if reply.ok else None

    def body(self) -> Any:
        return self.sim.world.snapshot()


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    sim = SimServer.start(scenario=CONFIG_DIR / "scenarios" / "fiducial_ahead.yaml", port=0)
    config = tmp_path_factory.mktemp("agent") / "agent.yaml"
    config.write_text(yaml.safe_dump(sim_agent_config(sim).model_dump(mode="json")))
    endpoint = f"tcp://127.0.0.1:{free_port_pair()}"
    live_view_port = free_payload_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "run", "--config", str(config),
         "--control-endpoint", endpoint, "--live-view-port", str(live_view_port),
         "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
    )
    running = Agent(sim, endpoint, process, live_view_port)
    try:
        def ready() -> bool:
            assert process.poll() is None, process.communicate()[1][-3000:]
            status = running.status()
            robot = (status or {}).get("robot") or {}
            return bool(robot.get("powered") and robot.get("has_lease"))

        wait_for("the agent to stand the robot up and serve control", ready, 90)
        yield running
    finally:
        process.terminate()
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        sim.stop()
        assert process.returncode == 0, stderr[-3000:]


def test_operator_takes_over_stops_and_sits_the_robot(agent: Agent) -> None:
    # The default rules walk the robot to tag 1 when they see it: a cue behavior.
    wait_for(
        "the tag rule to start a cue behavior",
        lambda: ((agent.status() or {}).get("behavior") or {}).get("source") == "cue",
        30,
    )
    watcher = agent.op_background("watch", "--json", "--duration", "12",
                                  "--topic", "behavior", "--topic", "command", "--topic", "operator")
    time.sleep(1.5)  # the watcher subscribes before things happen

    held = agent.op("launch", "hold")
    assert held.returncode == 0, held.stderr
    assert "Launched hold" in held.stdout
    behavior = agent.status()["behavior"]  # type: ignore[index]
    assert (behavior["name"], behavior["source"]) == ("hold", "operator")
    assert agent.op("pause-cues").returncode == 0

    # An operator walk to the tag, then `stop` while it walks: stop wins, the robot halts.
    walk = agent.op("launch", "go_to_fiducial", "tag_id=1", "distance_m=1.0")
    assert walk.returncode == 0, walk.stderr
    wait_for("the robot to walk", lambda: abs(agent.body().vx) > 0.05, 10)
    stopped = agent.op("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "Stopped: the stop command was sent to the robot. Ended go_to_fiducial." in stopped.stdout
    wait_for("the robot to stand still",
             lambda: abs(agent.body().vx) < 0.02 and abs(agent.body().vy) < 0.02, 2.0)
    assert agent.status()["behavior"] is None  # type: ignore[index]
    halted_at = agent.body().x
    time.sleep(1.0)  # nothing resumes by itself
    assert abs(agent.body().x - halted_at) < 0.03

    sat = agent.op("launch", "sit")
    assert sat.returncode == 0, sat.stderr
    wait_for("the robot to sit",
             lambda: agent.body().posture in (Posture.SITTING_DOWN, Posture.SITTING), 5)
    assert agent.op("resume-cues").returncode == 0

    out, err = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    behaviors = [(e["data"].get("name"), e["data"].get("state"), e["data"].get("source"))
                 for e in events if e["topic"] == "behavior"]
    assert ("sequence", "preempted", "cue") in behaviors  # the operator pre-empted the cue rule
    assert ("go_to_fiducial", "started", "operator") in behaviors
    assert ("go_to_fiducial", "stopped", "operator") in behaviors
    kinds = [e["data"]["command"]["kind"] for e in events if e["topic"] == "command" and e["data"]["ok"]]
    assert "goto" in kinds and "stop" in kinds and "sit" in kinds
    audit = [(e["data"]["cmd"], e["data"]["ok"]) for e in events if e["topic"] == "operator"]
    assert ("launch", True) in audit and ("stop", True) in audit


def test_watch_shows_readable_lines(agent: Agent) -> None:
    done = agent.op("watch", "--count", "3", "--duration", "20", "--topic", "health")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    assert all("health" in line and "frontleft_fisheye_image" in line and "Hz" in line for line in lines)
    assert "robot: connected, motors on, E-Stop released, lease held" in lines[-1]


def test_snapshot_is_a_decodable_jpeg_with_the_tag(agent: Agent, tmp_path: Path) -> None:
    target = tmp_path / "front.jpg"
    done = agent.op("snapshot", "frontleft_fisheye_image", "-o", str(target))
    assert done.returncode == 0, done.stderr
    image = cv2.imdecode(np.frombuffer(target.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100
    assert f"to {target}" in done.stdout


def test_status_reads_like_a_person_wrote_it(agent: Agent) -> None:
    done = agent.op("status")
    assert done.returncode == 0, done.stderr
    assert f"Agent at {agent.endpoint}" in done.stdout
    assert "Robot: connected, motors on, E-Stop released, lease held" in done.stdout
    assert "frontleft_fisheye_image" in done.stdout and "Hz" in done.stdout


def test_bad_requests_change_nothing_and_agent_keeps_running(agent: Agent) -> None:
    # Cue rules paused: what the cameras see (tag 1 ahead) must not change the behavior between
    # the two status calls, only a bad request could.
    assert agent.op("pause-cues").returncode == 0
    try:
        _bad_requests_change_nothing(agent)
    finally:
        assert agent.op("resume-cues").returncode == 0


def _bad_requests_change_nothing(agent: Agent) -> None:
    before = agent.status()
    with ControlClient(agent.endpoint, timeout_s=3.0) as client:
        for payload in (b"\x00garbage", b'{"v":1,"id":"x","cmd":"launch","args":{"name":"fly"}}',
                        b" " * (MAX_REQUEST_BYTES + 10), b'{"v":1,"id":"x","cmd":"launch","args":{"name":"sit","params":{"speed":"fast"}}}'):
            client.send_raw(payload)
            reply = client.receive_reply(None)
            assert not reply.ok and reply.error is not None
        refused = agent.op("launch", "dance")
        assert refused.returncode == 1 and "The agent refused launch" in refused.stderr
        after = client.call("status").value
    assert after["behavior"] == before["behavior"]  # type: ignore[index]
    assert agent.process.poll() is None


def test_foxglove_live_view_shows_camera_boxes_and_state(agent: Agent) -> None:
    import asyncio

    import websockets

    async def look() -> dict[str, bytes]:
        url = f"ws://127.0.0.1:{agent.live_view_port}"
        async with websockets.connect(url, subprotocols=["foxglove.sdk.v1"]) as ws:
            channels: dict[str, int] = {}
            wanted = ["/camera/frontleft_fisheye_image/compressed",
                      "/camera/frontleft_fisheye_image/annotations", "/agent/state"]
            while not all(topic in channels for topic in wanted):
                message = await asyncio.wait_for(ws.recv(), 5)
                if isinstance(message, str) and json.loads(message).get("op") == "advertise":
                    channels.update({c["topic"]: c["id"] for c in json.loads(message)["channels"]})
            await ws.send(json.dumps({"op": "subscribe", "subscriptions": [
                {"id": i, "channelId": channels[topic]} for i, topic in enumerate(wanted)]}))
            got: dict[str, bytes] = {}
            while len(got) < len(wanted):
                message = await asyncio.wait_for(ws.recv(), 5)
                if isinstance(message, bytes) and message[0] == 1:
                    got.setdefault(wanted[int.from_bytes(message[1:5], "little")], message[13:])
            return got

    got = asyncio.run(look())
    assert b"\xff\xd8" in got["/camera/frontleft_fisheye_image/compressed"]  # a JPEG inside
    state = json.loads(got["/agent/state"])
    assert "frontleft_fisheye_image" in state["cameras"] and state["robot"]["has_lease"] is True
