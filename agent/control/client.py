"""`ControlClient`: the operator's side of the control protocol (blocking, for CLIs and scripts).

Requests go over a DEALER socket with REQ-style framing, matched to replies by id, so a
request that timed out never wedges the socket (a late reply is simply discarded). Events come
from a SUB socket on the endpoint the agent advertises in its `hello` reply.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import zmq

from agent.control.endpoints import check_endpoint, events_endpoint_for_client
from agent.control.keys import ClientKeys
from agent.control.protocol import (
    Event,
    ProtocolError,
    Reply,
    decode_event,
    decode_reply,
    encode_request,
)

DEFAULT_TIMEOUT_S = 3.0


class AgentUnreachable(ConnectionError):
    """No (valid) answer from the agent in time."""


class AgentError(RuntimeError):
    """The agent answered with an error reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Result:
    value: Any
    attachment: bytes | None = None


class ControlClient:
    def __init__(
        self,
        endpoint: str,
        keys: ClientKeys | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        context: zmq.Context | None = None,
    ) -> None:
        check_endpoint(endpoint)
        self.endpoint = endpoint
        self.keys = keys
        self.timeout_s = timeout_s
        self._context = context or zmq.Context.instance()
        self._socket = self._make_socket(zmq.DEALER)
        self._socket.connect(endpoint)

    def _make_socket(self, kind: int) -> zmq.Socket:
        sock = self._context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, 64 * 1024 * 1024)  # snapshots are large, not huge
        if self.keys is not None:
            sock.curve_secretkey = self.keys.secret
            sock.curve_publickey = self.keys.public
            sock.curve_serverkey = self.keys.server_public
        return sock

    def unreachable_message(self) -> str:
        text = f"No answer from the agent at {self.endpoint}: is it running? is the port right?"
        if self.keys is not None:
            text += (
                " (With keys: is --server-key the agent's server.key, and is your public key "
                "in the agent's authorized keys directory?)"
            )
        else:
            text += " (An agent on another machine needs --server-key and --client-key.)"
        return text

    def send_raw(self, payload: bytes, timeout_s: float | None = None) -> None:
        """Send any bytes as a request (tests use it to send garbage).

        A DEALER whose connection was refused (e.g. a key the agent does not accept) has no
        peer to queue for and would block in send forever: wait at most the timeout.
        """
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        if not self._socket.poll(int(timeout_s * 1000) + 1, zmq.POLLOUT):
            raise AgentUnreachable(self.unreachable_message())
        try:
            self._socket.send_multipart([b"", payload], flags=zmq.NOBLOCK)
        except zmq.Again:
            raise AgentUnreachable(self.unreachable_message()) from None

    def receive_reply(self, request_id: str | None, timeout_s: float | None = None) -> Reply:
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._socket.poll(int(remaining * 1000) + 1, zmq.POLLIN):
                raise AgentUnreachable(self.unreachable_message())
            frames = self._socket.recv_multipart()
            if frames and frames[0] == b"":
                frames = frames[1:]
            try:
                reply = decode_reply(frames)
            except ProtocolError:
                continue  # not something this client can use: keep waiting for ours
            if request_id is None or reply.id == request_id or reply.id is None:
                return reply

    def request(
        self, cmd: str, args: dict[str, Any] | None = None, timeout_s: float | None = None
    ) -> Reply:
        """Send one request and wait for its reply (ok or error)."""
        request_id = uuid.uuid4().hex[:16]
        started = time.monotonic()
        self.send_raw(encode_request(cmd, args, request_id), timeout_s)
        remaining = (self.timeout_s if timeout_s is None else timeout_s) - (time.monotonic() - started)
        return self.receive_reply(request_id, max(remaining, 0.0))

    def call(self, cmd: str, args: dict[str, Any] | None = None) -> Result:
        """Like `request`, but raises `AgentError` for an error reply."""
        reply = self.request(cmd, args)
        if not reply.ok:
            assert reply.error is not None
            raise AgentError(reply.error.code, reply.error.message)
        return Result(reply.result, reply.attachment)

    def events(
        self,
        topics: list[str] | None = None,
        duration_s: float | None = None,
        count: int | None = None,
        idle_timeout_s: float = 0.2,
    ) -> Iterator[Event | None]:
        """Yield events until `count` events or `duration_s` seconds (forever if neither).

        Asks the agent where its event stream is first, which also proves the agent is there
        and that our keys are accepted: a SUB socket alone would wait silently forever. Yields
        None every `idle_timeout_s` without events, so a caller can refresh a display.
        """
        hello = self.call("hello").value
        endpoint = events_endpoint_for_client(self.endpoint, hello["events_endpoint"])
        sub = self._make_socket(zmq.SUB)
        try:
            for topic in topics or [""]:
                sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
            sub.connect(endpoint)
            end = None if duration_s is None else time.monotonic() + duration_s
            seen = 0
            while (count is None or seen < count) and (end is None or time.monotonic() < end):
                wait = idle_timeout_s if end is None else min(idle_timeout_s, end - time.monotonic())
                if not sub.poll(max(1, int(wait * 1000)), zmq.POLLIN):
                    yield None
                    continue
                try:
                    event = decode_event(sub.recv_multipart())
                except ProtocolError:
                    continue
                seen += 1
                yield event
        finally:
            sub.close(linger=0)

    def close(self) -> None:
        self._socket.close(linger=0)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
