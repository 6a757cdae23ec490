"""ControlServer over real ZeroMQ sockets on ephemeral loopback ports, with a stateful fake
agent: commands change state, bad messages get error replies and change nothing, the server
keeps answering, and CurveZMQ admits only authorized operators."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
import zmq
from fakes.control import FakeAgent, ServerThread
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.control.client import AgentError, AgentUnreachable, ControlClient
from agent.control.endpoints import (
    BindError,
    default_events_endpoint,
    events_endpoint_for_client,
    is_loopback,
)
from agent.control.keys import (
    KeyFileError,
    create_key_pair,
    load_client_keys,
    load_server_keys,
)
from agent.control.protocol import MAX_REQUEST_BYTES, ErrorCode
from agent.control.server import ControlServer, InsecureBindError

pytestmark = pytest.mark.timeout(60)


@pytest.fixture()
def agent() -> FakeAgent:
    return FakeAgent()


@pytest.fixture()
def served(agent: FakeAgent):
    with ServerThread(agent, handler_timeout_s=0.5) as server:
        agent.publish = server.server.publish
        yield server


@pytest.fixture()
def client(served: ServerThread):
    with ControlClient(served.endpoint, timeout_s=2.0) as c:
        yield c


def test_launch_status_stop(client: ControlClient, agent: FakeAgent) -> None:
    client.call("launch", {"name": "turn_toward", "params": {"target": "person", "speed": 0.3}})
    assert agent.active is not None and agent.active["params"] == {"target": "person", "speed": 0.3}
    status = client.call("status").value
    assert status["behavior"]["name"] == "turn_toward"
    assert client.call("stop").value == {"ended": "turn_toward"}
    assert agent.active is None
    assert agent.sent[-1][1].kind == "stop"


def test_pause_and_resume_cues(client: ControlClient, agent: FakeAgent) -> None:
    client.call("pause_cues")
    assert agent.cues_paused and client.call("status").value["cues_paused"] is True
    client.call("resume_cues")
    assert not agent.cues_paused


def test_behaviors_lists_catalog(client: ControlClient) -> None:
    names = [b["name"] for b in client.call("behaviors").value]
    assert "turn_toward" in names and "sit" in names


def test_refused_launch_changes_nothing(client: ControlClient, agent: FakeAgent) -> None:
    client.call("launch", {"name": "sit"})
    with pytest.raises(AgentError) as info:
        client.call("launch", {"name": "dance"})
    assert info.value.code == ErrorCode.REJECTED and "dance" in info.value.message
    with pytest.raises(AgentError) as info:
        client.call("launch", {"name": "turn_toward"})
    assert "target" in info.value.message
    assert agent.active is not None and agent.active["name"] == "sit"


def test_snapshot_carries_decodable_jpeg(client: ControlClient) -> None:
    import cv2
    import numpy as np

    result = client.call("snapshot", {"camera": "frontleft_fisheye_image"})
    assert result.value["format"] == "jpeg" and result.value["bytes"] == len(result.attachment)
    image = cv2.imdecode(np.frombuffer(result.attachment, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (480, 640, 3)
    # the detection box was drawn in green on a grey image
    b, g, r = image[100, 150].astype(int)
    assert g > 150 and g - r > 80


def test_snapshot_of_unknown_camera_is_not_found(client: ControlClient) -> None:
    with pytest.raises(AgentError) as info:
        client.call("snapshot", {"camera": "hand_color_image"})
    assert info.value.code == ErrorCode.NOT_FOUND and "frontleft_fisheye_image" in info.value.message


GARBAGE = [
    b"",
    b"\x00\x01\x02",
    b"{not json",
    b'{"v":1,"id":"x","cmd":"launch","args":{"name":"sit","params":{"a":NaN}}}',
    b'{"v":9,"id":"x","cmd":"stop"}',
    b'{"v":1,"id":"x","cmd":"launch"}',
    b'{"v":1,"id":"x","cmd":"rm -rf"}',
    b"[" * 100_000,  # deep and oversized
    b'{"v":1,"id":"x","cmd":"launch","args":{"name":"sit"},"pad":"' + b"a" * MAX_REQUEST_BYTES + b'"}',
]


@pytest.mark.parametrize("payload", GARBAGE)
def test_garbage_gets_error_reply_and_changes_nothing(
    payload: bytes, client: ControlClient, agent: FakeAgent, served: ServerThread
) -> None:
    client.send_raw(payload)
    reply = client.receive_reply(None)
    assert not reply.ok and reply.error is not None and reply.error.message
    assert agent.active is None and agent.sent == []
    assert client.call("status").value["behavior"] is None  # still answering
    assert served.alive()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=2048) | st.text(max_size=300).map(str.encode))
def test_fuzz_every_message_gets_one_reply_and_changes_nothing(
    payload: bytes, client: ControlClient, agent: FakeAgent
) -> None:
    client.send_raw(payload)
    reply = client.receive_reply(None)
    assert not reply.ok or payload.strip().startswith(b"{")
    assert client.call("hello").value["protocol"] == 1
    assert agent.active is None and agent.sent == [] and not agent.cues_paused


def test_oversized_request_error_names_the_limit(client: ControlClient) -> None:
    client.send_raw(b" " * (MAX_REQUEST_BYTES + 1))
    reply = client.receive_reply(None)
    assert reply.error is not None and reply.error.code == ErrorCode.TOO_LARGE
    assert str(MAX_REQUEST_BYTES) in reply.error.message


def test_huge_frame_is_dropped_by_transport_and_server_survives(
    served: ServerThread, agent: FakeAgent
) -> None:
    with ControlClient(served.endpoint, timeout_s=0.5) as flooder:
        flooder.send_raw(b"{" + b" " * (2 * 1024 * 1024) + b"}")
        with pytest.raises(AgentUnreachable):
            flooder.receive_reply(None)
    with ControlClient(served.endpoint, timeout_s=2.0) as other:
        other.call("launch", {"name": "stand"})
    assert agent.active is not None and agent.active["name"] == "stand"


def test_multipart_request_is_refused(served: ServerThread, agent: FakeAgent) -> None:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(served.endpoint)
    try:
        sock.send_multipart([b"", b'{"v":1,"id":"a","cmd":"stop"}', b"extra"])
        assert sock.poll(2000)
        frames = sock.recv_multipart()
        assert b'"bad_envelope"' in frames[1]
        assert agent.sent == []
    finally:
        sock.close()


def test_plain_req_socket_works(served: ServerThread) -> None:
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.linger = 0
    sock.connect(served.endpoint)
    try:
        sock.send(b'{"v":1,"id":"q","cmd":"hello"}')
        assert sock.poll(2000)
        assert b'"ok":true' in sock.recv()
    finally:
        sock.close()


def test_handler_error_becomes_internal_error_and_server_survives(
    served: ServerThread, client: ControlClient, agent: FakeAgent
) -> None:
    async def broken() -> dict:
        raise RuntimeError("sensor exploded")

    agent.status = broken  # type: ignore[method-assign]
    with pytest.raises(AgentError) as info:
        client.call("status")
    assert info.value.code == ErrorCode.INTERNAL and "sensor exploded" in info.value.message
    client.call("stop")
    assert served.alive()


def test_slow_handler_times_out_and_does_not_delay_stop(
    served: ServerThread, agent: FakeAgent
) -> None:
    with ControlClient(served.endpoint, timeout_s=3.0) as slow, ControlClient(served.endpoint) as fast:
        slow.send_raw(b'{"v":1,"id":"slow","cmd":"launch","args":{"name":"slow"}}')
        started = time.perf_counter()
        fast.call("stop")
        assert time.perf_counter() - started < 0.3  # stop did not wait for the slow launch
        reply = slow.receive_reply("slow")
        assert reply.error is not None and reply.error.code == ErrorCode.TIMEOUT


def test_events_reach_subscribers_including_operator_audit(
    served: ServerThread, client: ControlClient
) -> None:
    def emit() -> None:
        time.sleep(0.4)  # let the subscriber connect (PUB drops events before that)
        served.server.publish("cue", {"rule": "wave"})  # from a non-loop thread
        with ControlClient(served.endpoint) as other:
            other.call("launch", {"name": "sit"})

    threading.Thread(target=emit).start()
    seen = [e for e in client.events(duration_s=3.0, count=3) if e is not None]
    topics = [e.topic for e in seen]
    assert topics[0] == "cue" and seen[0].data == {"rule": "wave"}
    assert "behavior" in topics and "operator" in topics
    audit = next(e for e in seen if e.topic == "operator")
    assert audit.data["cmd"] == "launch" and audit.data["ok"] is True and audit.data["operator"] == "local"
    assert [e.seq for e in seen] == sorted(e.seq for e in seen)


def test_topic_filter(served: ServerThread, client: ControlClient) -> None:
    def emit() -> None:
        time.sleep(0.4)
        for topic in ("health", "cue", "health"):
            served.server.publish(topic, {"t": topic})

    threading.Thread(target=emit).start()
    seen = [e for e in client.events(["cue"], duration_s=1.5) if e is not None]
    assert [e.topic for e in seen] == ["cue"]


# --- binding rules ----------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["tcp://0.0.0.0:0", "tcp://*:0", "tcp://192.168.50.5:21000", "tcp://eth0:0"])
def test_network_bind_without_keys_is_refused(endpoint: str, agent: FakeAgent) -> None:
    with pytest.raises(InsecureBindError, match="CurveZMQ"):
        ControlServer(agent, endpoint=endpoint)


def test_network_events_bind_without_keys_is_refused(agent: FakeAgent) -> None:
    with pytest.raises(InsecureBindError, match="0.0.0.0"):
        ControlServer(agent, endpoint="tcp://127.0.0.1:0", events_endpoint="tcp://0.0.0.0:0")


def test_port_in_use_is_a_clear_error(agent: FakeAgent) -> None:
    async def run() -> None:
        async with ControlServer(agent, endpoint="tcp://127.0.0.1:0") as first:
            with pytest.raises(BindError, match="cannot serve operator control"):
                await ControlServer(agent, endpoint=first.endpoint).start()

    asyncio.run(run())


def test_endpoint_helpers() -> None:
    assert is_loopback("tcp://127.0.0.1:21000") and is_loopback("tcp://[::1]:1") and is_loopback("tcp://localhost:1")
    assert is_loopback("ipc:///tmp/agent")
    assert not is_loopback("tcp://0.0.0.0:1") and not is_loopback("tcp://*:1") and not is_loopback("tcp://10.0.0.2:1")
    assert default_events_endpoint("tcp://127.0.0.1:21000") == "tcp://127.0.0.1:21001"
    assert default_events_endpoint("tcp://127.0.0.1:0") == "tcp://127.0.0.1:0"
    assert events_endpoint_for_client("tcp://192.168.50.5:21000", "tcp://0.0.0.0:21001") == "tcp://192.168.50.5:21001"


# --- CurveZMQ ---------------------------------------------------------------------------------


@pytest.fixture()
def keys(tmp_path: Path) -> Path:
    robot, laptop = tmp_path / "robot", tmp_path / "laptop"
    create_key_pair(robot, "server")
    create_key_pair(laptop, "alice")
    create_key_pair(laptop, "mallory")
    (robot / "authorized").mkdir()
    (robot / "authorized" / "alice.key").write_bytes((laptop / "alice.key").read_bytes())
    return tmp_path


def test_curve_admits_only_authorized_operators(keys: Path, agent: FakeAgent) -> None:
    server_keys = load_server_keys(keys / "robot")
    with ServerThread(agent, endpoint="tcp://0.0.0.0:0", curve=server_keys) as served:
        endpoint = "tcp://127.0.0.1:" + served.endpoint.rsplit(":", 1)[1]
        alice = load_client_keys(keys / "robot" / "server.key", keys / "laptop" / "alice.key_secret")
        mallory = load_client_keys(keys / "robot" / "server.key", keys / "laptop" / "mallory.key_secret")

        with ControlClient(endpoint, keys=mallory, timeout_s=1.0) as intruder:
            with pytest.raises(AgentUnreachable, match="authorized keys"):
                intruder.call("launch", {"name": "sit"})
            with pytest.raises(AgentUnreachable):  # and cannot watch either
                next(intruder.events(duration_s=1.0))
        with ControlClient(endpoint, timeout_s=1.0) as plaintext, pytest.raises(AgentUnreachable):
            plaintext.call("stop")
        assert agent.active is None and agent.sent == []

        with ControlClient(endpoint, keys=alice, timeout_s=2.0) as operator:
            assert operator.call("hello").value["curve"] is True

            def emit() -> None:
                time.sleep(0.5)
                with ControlClient(endpoint, keys=alice) as other:
                    other.call("launch", {"name": "sit"})

            threading.Thread(target=emit).start()
            audit = next(
                e for e in operator.events(["operator"], duration_s=3.0) if e is not None
            )
        assert agent.active is not None and agent.active["name"] == "sit"
        assert audit.data["operator"] == "alice"


def test_server_keys_need_authorized_operators(tmp_path: Path) -> None:
    create_key_pair(tmp_path, "server")
    with pytest.raises(KeyFileError, match="authorized"):
        load_server_keys(tmp_path)
    (tmp_path / "authorized").mkdir()
    with pytest.raises(KeyFileError, match="nobody could connect"):
        load_server_keys(tmp_path)


def test_missing_server_key_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="spot-agent keys"):
        load_server_keys(tmp_path)


def test_client_needs_secret_key(keys: Path) -> None:
    with pytest.raises(KeyFileError, match="key_secret"):
        load_client_keys(keys / "robot" / "server.key", keys / "laptop" / "alice.key")


def test_key_pair_is_private_and_never_overwritten(tmp_path: Path) -> None:
    public, secret = create_key_pair(tmp_path, "bob")
    assert secret.stat().st_mode & 0o077 == 0
    before = secret.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        create_key_pair(tmp_path, "bob")
    assert secret.read_bytes() == before
