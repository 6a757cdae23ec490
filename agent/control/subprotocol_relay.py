"""One live view port for every Foxglove viewer, whichever name of the protocol it asks for.

The Foxglove WebSocket protocol is spoken under two names: `foxglove.websocket.v1` (Foxglove
Studio before the SDK, Lichtblick, `@foxglove/ws-protocol` clients, foxglove_bridge 0.x) and
`foxglove.sdk.v1` (Foxglove 2.x, foxglove_bridge 3.x). Foxglove says the two are the same
protocol under a new name. foxglove-sdk's server (up to 0.30.3, the newest release) accepts only
`foxglove.sdk.v1`: the name is a constant in its handshake (rust/foxglove/src/websocket/
handshake.rs) and no server option changes it, so older viewers get HTTP 400.

`SubprotocolRelay` listens on the live view's public port and relays every connection to the
SDK server on a loopback port. It rewrites one header of the opening handshake, nothing else:
a client that offers only `foxglove.websocket.v1` is presented to the SDK as `foxglove.sdk.v1`,
and the SDK's answer is given back under the name the client asked for. After the handshake the
bytes flow through unchanged in both directions (WebSocket frames do not name the subprotocol;
`Sec-WebSocket-Accept` depends only on the client's key). Each direction waits for the other
side to take its bytes before reading more, so a slow viewer backs up into the SDK server,
which drops messages for it, and never into this process's memory.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from concurrent.futures import Future

log = logging.getLogger(__name__)

SDK_SUBPROTOCOL = "foxglove.sdk.v1"
LEGACY_SUBPROTOCOL = "foxglove.websocket.v1"
ACCEPTED_SUBPROTOCOLS = (SDK_SUBPROTOCOL, LEGACY_SUBPROTOCOL)

_MAX_HEAD_BYTES = 16 * 1024  # an HTTP upgrade request is a few hundred bytes
_HEAD_TIMEOUT_S = 10.0
_CHUNK = 64 * 1024
_PROTOCOL_HEADER = re.compile(rb"^sec-websocket-protocol:[ \t]*(.*?)[ \t]*$", re.I | re.M)


def offered_protocols(head: bytes) -> list[str]:
    """The subprotocols a WebSocket request head offers, in order."""
    offered: list[str] = []
    for match in _PROTOCOL_HEADER.finditer(head):
        offered += [p.strip() for p in match.group(1).decode("latin-1").split(",") if p.strip()]
    return offered


def rewrite_protocol(head: bytes, old: str, new: str) -> bytes:
    """`head` with every Sec-WebSocket-Protocol header naming `old` saying `new` instead."""

    def swap(match: re.Match[bytes]) -> bytes:
        names = [p.strip() for p in match.group(1).decode("latin-1").split(",")]
        value = ", ".join(new if p == old else p for p in names if p)
        return b"Sec-WebSocket-Protocol: " + value.encode("latin-1")

    return _PROTOCOL_HEADER.sub(swap, head.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")


class SubprotocolRelay:
    """Relays `host:port` to the foxglove-sdk server on `127.0.0.1:target_port` (own thread)."""

    def __init__(self, host: str, port: int, target_port: int) -> None:
        self.host, self.requested_port, self.target_port = host, port, target_port
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Listen; raises OSError (port in use, address not local) before returning."""
        started: Future[None] = Future()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, args=(started,), name="live-view-relay", daemon=True
        )
        self._thread.start()
        started.result(timeout=10.0)

    def _serve(self, started: Future[None]) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._accept, self.host, self.requested_port)
            )
        except BaseException as exc:
            started.set_exception(exc)
            self._loop.close()
            return
        self.port = int(self._server.sockets[0].getsockname()[1])
        started.set_result(None)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._shutdown())
            self._loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    def close(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5.0)
        self._thread = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._relay(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass  # the viewer went away or sent something that is not a WebSocket request
        finally:
            self._connections.discard(task)
            writer.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT_S)
        if len(head) > _MAX_HEAD_BYTES:
            return
        offered = offered_protocols(head)
        legacy = LEGACY_SUBPROTOCOL in offered and SDK_SUBPROTOCOL not in offered
        if legacy:
            head = rewrite_protocol(head, LEGACY_SUBPROTOCOL, SDK_SUBPROTOCOL)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        try:
            up_writer.write(head)
            await up_writer.drain()
            answer = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT_S)
            if legacy:
                answer = rewrite_protocol(answer, SDK_SUBPROTOCOL, LEGACY_SUBPROTOCOL)
            writer.write(answer)
            await writer.drain()
            pipes = [
                asyncio.create_task(_pipe(reader, up_writer)),
                asyncio.create_task(_pipe(up_reader, writer)),
            ]
            try:
                await asyncio.gather(*pipes)
            finally:  # one side failed, or shutdown: end the other direction too
                for pipe in pipes:
                    pipe.cancel()
        finally:
            up_writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until end of stream; drain() waits for the receiver (bounded memory)."""
    try:
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
    finally:
        if sink.can_write_eof():
            try:
                sink.write_eof()
            except OSError:
                pass
