"""`spot-agent op ...` and `spot-agent keys` in their own processes, against a control server
(with a stateful fake agent) in this one: what an operator types, sees and gets back."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pytest
from fakes.control import FakeAgent, ServerThread

from agent.control.keys import create_key_pair, load_server_keys
from agent.control.op_params import format_params, parse_params, parse_value

pytestmark = pytest.mark.timeout(120)


def spot_agent(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture()
def agent() -> FakeAgent:
    return FakeAgent()


@pytest.fixture()
def served(agent: FakeAgent):
    with ServerThread(agent) as server:
        agent.publish = server.server.publish
        yield server


def op(served: ServerThread, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return spot_agent("op", "--endpoint", served.endpoint, *args, timeout=timeout)


def test_launch_then_stop(served: ServerThread, agent: FakeAgent) -> None:
    done = op(served, "launch", "turn_toward", "target=person", "speed=0.3", "loud=true")
    assert done.returncode == 0, done.stderr
    assert "Launched turn_toward target=person speed=0.3 loud=True" in done.stdout
    assert agent.active is not None
    assert agent.active["params"] == {"target": "person", "speed": 0.3, "loud": True}

    status = op(served, "status")
    assert status.returncode == 0, status.stderr
    assert "Behavior: turn_toward (operator" in status.stdout
    assert "frontleft_fisheye_image" in status.stdout and "15.0 Hz" in status.stdout

    stopped = op(served, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert "Stopped" in stopped.stdout and "turn_toward" in stopped.stdout
    assert agent.active is None and agent.sent[-1][1].kind == "stop"


def test_refused_launch_reads_like_a_sentence(served: ServerThread, agent: FakeAgent) -> None:
    done = op(served, "launch", "dance")
    assert done.returncode == 1
    assert "The agent refused launch: unknown behavior 'dance'" in done.stderr
    assert "Traceback" not in done.stderr
    bad = op(served, "launch", "sit", "oops")
    assert bad.returncode == 2 and "key=value" in bad.stderr
    assert agent.active is None


def test_behaviors_and_cues(served: ServerThread, agent: FakeAgent) -> None:
    listing = op(served, "behaviors")
    assert listing.returncode == 0, listing.stderr
    assert "turn_toward" in listing.stdout and "speed: float = 0.5" in listing.stdout
    assert op(served, "pause-cues").returncode == 0 and agent.cues_paused
    assert op(served, "resume-cues").returncode == 0 and not agent.cues_paused


def test_snapshot_writes_a_jpeg(served: ServerThread, tmp_path: Path) -> None:
    target = tmp_path / "front.jpg"
    done = op(served, "snapshot", "frontleft_fisheye_image", "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert "640x480" in done.stdout and "person 0.90" in done.stdout
    image = cv2.imread(str(target))
    assert image is not None and image.shape == (480, 640, 3)
    missing = op(served, "snapshot", "hand_color_image", "-o", str(tmp_path / "x.jpg"))
    assert missing.returncode == 1 and "no camera 'hand_color_image'" in missing.stderr
    assert not (tmp_path / "x.jpg").exists()


def test_watch_prints_readable_events(served: ServerThread) -> None:
    def emit() -> None:
        time.sleep(1.5)  # the watcher process starts and subscribes first
        for _i in range(20):
            served.server.publish("cue", {"rule": "wave_back", "behavior": "sit", "label": "person"})
            served.server.publish(
                "command",
                {"command": {"kind": "velocity", "vx": 0.0, "vy": 0.0, "vyaw": 0.4, "duration_s": 0.6}, "ok": True},
            )
            time.sleep(0.2)

    threading.Thread(target=emit, daemon=True).start()
    done = op(served, "watch", "--count", "2", "--duration", "20")
    assert done.returncode == 0, done.stderr
    assert "rule 'wave_back' fired -> sit (saw person)" in done.stdout
    assert "sent velocity vx=0.00 vy=0.00 vyaw=0.40 for 0.6 s" in done.stdout
    assert "2 event(s)" in done.stderr


def test_watch_for_a_duration_with_nothing_happening(served: ServerThread) -> None:
    started = time.monotonic()
    done = op(served, "watch", "--duration", "1")
    assert done.returncode == 0, done.stderr
    assert "0 event(s)" in done.stderr
    assert time.monotonic() - started < 15


def test_no_agent_is_a_clear_message() -> None:
    done = spot_agent("op", "--endpoint", "tcp://127.0.0.1:9", "--timeout", "0.5", "status")
    assert done.returncode == 3
    assert "No answer from the agent at tcp://127.0.0.1:9: is it running? is the port right?" in " ".join(done.stderr.split())


def test_keys_and_curve_end_to_end(tmp_path: Path, agent: FakeAgent) -> None:
    robot, laptop = tmp_path / "robot", tmp_path / "laptop"
    made = spot_agent("keys", "--dir", str(robot), "--name", "server")
    assert made.returncode == 0, made.stderr
    assert (robot / "server.key").exists() and (robot / "server.key_secret").exists()
    assert "Give server.key to the operators" in " ".join(made.stdout.split())
    again = spot_agent("keys", "--dir", str(robot), "--name", "server")
    assert again.returncode == 2 and "already exists" in again.stderr
    assert spot_agent("keys", "--dir", str(laptop), "--name", "alice").returncode == 0
    create_key_pair(laptop, "mallory")
    (robot / "authorized").mkdir()
    (robot / "authorized" / "alice.key").write_bytes((laptop / "alice.key").read_bytes())

    with ServerThread(agent, endpoint="tcp://0.0.0.0:0", curve=load_server_keys(robot)) as served:
        endpoint = "tcp://127.0.0.1:" + served.endpoint.rsplit(":", 1)[1]
        common = ["op", "--endpoint", endpoint, "--server-key", str(robot / "server.key"), "--timeout", "1"]
        intruder = spot_agent(*common, "--client-key", str(laptop / "mallory.key_secret"), "launch", "sit")
        assert intruder.returncode == 3 and "authorized keys" in " ".join(intruder.stderr.split())
        no_keys = spot_agent("op", "--endpoint", endpoint, "--timeout", "1", "stop")
        assert no_keys.returncode == 3
        assert agent.active is None and agent.sent == []
        alice = spot_agent(*common, "--client-key", str(laptop / "alice.key_secret"), "launch", "sit")
        assert alice.returncode == 0, alice.stderr
        assert agent.active is not None and agent.active["name"] == "sit"
        half = spot_agent("op", "--endpoint", endpoint, "--server-key", str(robot / "server.key"), "stop")
        assert half.returncode == 2 and "both --server-key and --client-key" in half.stderr


@pytest.mark.parametrize(
    "text, value",
    [("1", 1), ("-2", -2), ("0.5", 0.5), ("1e3", 1000.0), ("true", True), ("False", False),
     ("person", "person"), ("nan", "nan"), ("inf", "inf"), ("", ""), ("null", None),
     ("[1, 2]", [1, 2]), ('{"behavior": "sit"}', {"behavior": "sit"})],
)
def test_parse_value(text: str, value: object) -> None:
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_parse_params_errors() -> None:
    assert parse_params(["a=1", "b=x=y"]) == {"a": 1, "b": "x=y"}
    with pytest.raises(ValueError, match="key=value"):
        parse_params(["novalue"])
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_params(["steps=[{behavior: sit}]"])
    with pytest.raises(ValueError, match="twice"):
        parse_params(["a=1", "a=2"])


def test_format_params_shapes() -> None:
    assert format_params([]) == "-"
    assert format_params([{"name": "target", "type": "str", "required": True}]) == "target: str (required)"
    assert format_params({"speed": {"type": "float", "default": 0.5}}) == "speed: float = 0.5"
