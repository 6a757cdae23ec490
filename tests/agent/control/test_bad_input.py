"""Bad input on the operator socket, found by independent fuzzing (issue 11): every reply carries
its request's id (even `busy`), launch parameters are not coerced on their way to the behavior
engine, and a flood of bad requests neither floods the log nor writes client bytes into it raw."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
import zmq
from fakes.control import FakeAgent, ServerThread

from agent.control.client import AgentError, ControlClient
from agent.control.protocol import ErrorCode, printable
from agent.control.rejection_log import RejectionLog
from behaviors.config import RulesConfig
from behaviors.engine import CueEngine

pytestmark = pytest.mark.timeout(60)


def _dealer(endpoint: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoint)
    return sock


def _request(request_id: str, cmd: str, args: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"v": 1, "id": request_id, "cmd": cmd, "args": args or {}}).encode()


def test_pipelined_requests_all_get_replies_matched_by_id() -> None:
    agent = FakeAgent()
    with ServerThread(agent, handler_timeout_s=10.0) as served:
        sock = _dealer(served.endpoint)
        try:
            sent = [f"slow-{i}" for i in range(16)] + [f"status-{i}" for i in range(400)]
            for request_id in sent:  # 16 slow launches fill the in-flight slots: the rest is busy
                cmd, args = ("launch", {"name": "slow"}) if request_id.startswith("slow") else ("status", None)
                sock.send_multipart([b"", _request(request_id, cmd, args)])
            replies = []
            while len(replies) < 400 and sock.poll(3000):
                replies.append(json.loads(sock.recv_multipart()[1]))
            busy = [r for r in replies if not r["ok"] and r["error"]["code"] == ErrorCode.BUSY]
            assert len(busy) >= 300, [r["error"] for r in replies if not r["ok"]][:3]
            assert all(r["id"] is not None for r in replies)
            assert {r["id"] for r in replies} <= set(sent)
            assert len({r["id"] for r in replies}) == len(replies)  # one reply per request
            # stop still gets through while the slots are full
            sock.send_multipart([b"", _request("the-stop", "stop")])
            assert sock.poll(2000)
            assert json.loads(sock.recv_multipart()[1]) == {
                "v": 1, "id": "the-stop", "ok": True, "result": {"ended": None}}
        finally:
            sock.close()


@pytest.mark.parametrize("args", [[], "x", 3, None, True])
def test_args_that_are_not_an_object_are_bad_args_with_the_id(args: Any) -> None:
    with ServerThread(FakeAgent()) as served, ControlClient(served.endpoint) as client:
        client.send_raw(json.dumps({"v": 1, "id": "a1", "cmd": "launch", "args": args}).encode())
        reply = client.receive_reply("a1")
        assert reply.id == "a1" and reply.error is not None
        assert reply.error.code == ErrorCode.BAD_ARGS
        assert reply.error.message.startswith("launch: args must be a JSON object")


class EngineAgent(FakeAgent):
    """The fake agent, launching through the real behavior engine (as `ControlHost` does)."""

    def __init__(self) -> None:
        super().__init__()
        self.engine = CueEngine(RulesConfig())

    async def launch(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        self.engine.launch(name, params, time.time(), source="operator")
        return {"name": name, "behavior": self.engine.active_info}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tag_id": 1, "distance_m": "1"}, "distance_m: Input should be a valid number (got '1')"),
        ({"tag_id": 1, "distance_m": True}, "distance_m: Input should be a valid number (got True)"),
        ({"tag_id": True}, "tag_id: Input should be a valid integer (got True)"),
        ({"tag_id": 1.0}, "tag_id: Input should be a valid integer (got 1.0)"),
    ],
)
def test_launch_parameters_are_not_coerced(params: dict[str, Any], field: str) -> None:
    agent = EngineAgent()
    with ServerThread(agent) as served, ControlClient(served.endpoint) as client:
        with pytest.raises(AgentError) as info:
            client.call("launch", {"name": "go_to_fiducial", "params": params})
        assert info.value.code == ErrorCode.REJECTED
        assert f"launch 'go_to_fiducial': params.{field}" in info.value.message
        assert agent.engine.active is None
        # the same launch with the right types starts (an integer is a number)
        client.call("launch", {"name": "go_to_fiducial", "params": {"tag_id": 1, "distance_m": 1}})
        assert agent.engine.active == "go_to_fiducial"


def test_a_flood_of_bad_requests_is_logged_briefly_and_escaped(caplog: pytest.LogCaptureFixture) -> None:
    evil = "\x00\x1b[2J\r\nfake=line"
    caplog.set_level(logging.INFO, logger="agent.control")
    with ServerThread(FakeAgent()) as served, ControlClient(served.endpoint) as client:
        for i in range(300):
            payload = {"v": 1, "id": f"r{i}", "cmd": "status", "args": {evil: 1}}
            client.send_raw(json.dumps(payload).encode())
            reply = client.receive_reply(f"r{i}")
            assert reply.error is not None and reply.error.code == ErrorCode.BAD_ARGS
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("agent.control")]
    rejected = [m for m in lines if m.startswith("rejected request")]
    assert len(rejected) == 10
    assert "\\x00\\x1b[2J\\r\\nfake=line" in rejected[0]
    summary = [m for m in lines if "more requests rejected" in m]
    assert summary == ["290 more requests rejected (logged at most 10 per 60 s): bad_args=290"]
    assert all(m.isprintable() for m in lines)


def test_rejection_log_reports_each_period() -> None:
    now = [0.0]
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("test.rejections")
    logger.addHandler(Capture())
    logger.setLevel(logging.INFO)
    rejections = RejectionLog(logger, burst=2, period_s=10.0, clock=lambda: now[0])
    assert [rejections.note("op", "bad_json", "x") for _ in range(5)] == [False, False, True, False, False]
    assert len(records) == 2
    now[0] = 10.0  # a new period: the held-back count first, then one by one again
    rejections.note("op", "busy", "y")
    assert records[2:] == [
        "3 more requests rejected (logged at most 2 per 10 s): bad_json=3",
        "rejected request from op: busy: y",
    ]
    rejections.flush()
    assert len(records) == 4  # nothing held back: no summary


def test_printable_escapes_control_characters() -> None:
    assert printable("a\x00b\nc\u2028") == "a\\x00b\\nc\\u2028"
    assert printable("x" * 100, 10) == "x" * 10 + "..."
    assert printable("plain: ok") == "plain: ok"
