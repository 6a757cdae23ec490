"""`ControlServer`: the agent's operator control socket and event stream over ZeroMQ.

- Requests: a ROUTER socket. Each request is validated (`protocol.decode_request`) and handed to
  an `AgentControl`; every request gets exactly one reply, an error reply for anything wrong,
  carrying the request's id whenever it has a readable one (`busy` replies too). Rejections are
  logged through `RejectionLog` (bounded, client text escaped).
  Requests run as tasks, so a slow snapshot never delays a `stop`; `stop` is also exempt from
  the in-flight limit that answers `busy` to floods.
- Events: a PUB socket; `publish()` never blocks (a slow subscriber loses events, the agent
  never waits) and may be called from any thread.
- Security: loopback-only binds may run in the clear; any other bind requires CurveZMQ, with a
  ZAP authenticator that admits only the operators' public keys in the authorized directory.
  The same keys guard both sockets, so an unknown operator can neither command nor watch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import zmq
import zmq.asyncio
from zmq.auth.asyncio import AsyncioAuthenticator

from agent.control.endpoints import (
    DEFAULT_CONTROL_ENDPOINT,
    BindError,
    check_endpoint,
    default_events_endpoint,
    is_loopback,
)
from agent.control.handler import AgentControl, ControlError, Snapshot
from agent.control.keys import ServerKeys
from agent.control.protocol import (
    MAX_TRANSPORT_BYTES,
    PROTOCOL_VERSION,
    ErrorCode,
    LaunchArgs,
    ProtocolError,
    Request,
    SnapshotArgs,
    StopArgs,
    decode_request,
    encode_event,
    encode_reply,
    to_jsonable,
)
from agent.control.rejection_log import RejectionLog
from agent.core.seams import RobotUnavailable

log = logging.getLogger(__name__)

ZAP_DOMAIN = "spot-agent"
MUTATING = {"launch", "stop", "pause_cues", "resume_cues"}


class InsecureBindError(ValueError):
    """Refusing to serve robot control on a network interface without CurveZMQ."""


class _OperatorAuthenticator(AsyncioAuthenticator):
    """ZAP handler admitting only the authorized operators' public keys, and naming each
    operator by their key file (the User-Id the control server logs) instead of a raw key."""

    def __init__(self, context: zmq.asyncio.Context, operators: dict[bytes, str]) -> None:
        super().__init__(context, log=logging.getLogger(__name__ + ".zap"))
        self._operators = operators  # z85 public key -> operator name

    def callback(self, domain: str, z85_client_key: bytes) -> bool:
        """Credentials provider for `configure_curve_callback`."""
        allowed = domain == ZAP_DOMAIN and z85_client_key in self._operators
        if not allowed:
            log.warning(
                "refused an operator key that is not authorized: %s...",
                z85_client_key[:8].decode("ascii", "replace"),
            )
        return allowed

    def curve_user_id(self, client_public_key: bytes) -> str:
        import zmq.utils.z85

        return self._operators.get(
            zmq.utils.z85.encode(client_public_key), "unknown-operator"
        )


class ControlServer:
    def __init__(
        self,
        handler: AgentControl,
        endpoint: str = DEFAULT_CONTROL_ENDPOINT,
        events_endpoint: str | None = None,
        curve: ServerKeys | None = None,
        handler_timeout_s: float = 5.0,
        max_in_flight: int = 16,
    ) -> None:
        check_endpoint(endpoint)
        events_endpoint = events_endpoint or default_events_endpoint(endpoint)
        check_endpoint(events_endpoint)
        for ep in (endpoint, events_endpoint):
            if curve is None and not is_loopback(ep):
                raise InsecureBindError(
                    f"refusing to serve operator control on {ep} without encryption: anyone "
                    "on that network could drive the robot. Give CurveZMQ keys "
                    "(--curve-keys-dir DIR; make them with `spot-agent keys`) or bind to "
                    "127.0.0.1."
                )
        self.handler = handler
        self.requested_endpoint = endpoint
        self.requested_events_endpoint = events_endpoint
        self.curve = curve
        self.handler_timeout_s = handler_timeout_s
        self.max_in_flight = max_in_flight
        self.endpoint = ""  # the bound endpoints (real port when asked for port 0)
        self.events_endpoint = ""
        self.requests_handled = 0
        self.requests_rejected = 0
        self.events_published = 0
        self.events_dropped = 0
        self._context: zmq.asyncio.Context | None = None
        self._auth: _OperatorAuthenticator | None = None
        self._router: zmq.asyncio.Socket | None = None
        self._pub: zmq.asyncio.Socket | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._event_seq = 0
        self._rejections = RejectionLog(log)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._context = zmq.asyncio.Context()
        try:
            if self.curve is not None:
                self._auth = _OperatorAuthenticator(self._context, self.curve.authorized)
                self._auth.start()
                self._auth.configure_curve_callback(ZAP_DOMAIN, self._auth)
            self._router = self._socket(zmq.ROUTER, MAX_TRANSPORT_BYTES)
            self._pub = self._socket(zmq.PUB, 4096)  # subscribers only send subscriptions
            self._pub.setsockopt(zmq.SNDHWM, 1000)
            self._router.bind(self.requested_endpoint)
            self._pub.bind(self.requested_events_endpoint)
        except zmq.ZMQError as exc:
            await self.close()
            raise BindError(
                f"cannot serve operator control on {self.requested_endpoint} / "
                f"{self.requested_events_endpoint}: {exc}"
            ) from exc
        self.endpoint = self._router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.events_endpoint = self._pub.getsockopt_string(zmq.LAST_ENDPOINT)
        self._serve_task = asyncio.create_task(self._serve(), name="control-server")
        log.info(
            "operator control on %s, events on %s (%s)",
            self.endpoint,
            self.events_endpoint,
            "CurveZMQ, %d operator key(s)" % len(self.curve.authorized)
            if self.curve
            else "loopback, no encryption",
        )

    def _socket(self, kind: int, max_msg_size: int) -> zmq.asyncio.Socket:
        assert self._context is not None
        sock = self._context.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, max_msg_size)
        if self.curve is not None:
            sock.curve_secretkey = self.curve.secret
            sock.curve_publickey = self.curve.public
            sock.curve_server = True
            sock.zap_domain = ZAP_DOMAIN.encode()
        return sock

    async def close(self) -> None:
        self._rejections.flush()
        if self._serve_task is not None:
            self._serve_task.cancel()
            await asyncio.gather(self._serve_task, return_exceptions=True)
            self._serve_task = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        for sock in (self._router, self._pub):
            if sock is not None:
                sock.close(linger=0)
        self._router = self._pub = None
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- events ----------------------------------------------------------------------------

    def publish(self, topic: str, data: dict[str, Any], when: float | None = None) -> None:
        """Publish one event; safe from any thread, never blocks, drops when nobody keeps up."""
        when = time.time() if when is None else when
        if self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._publish_now(topic, data, when)
        else:
            try:
                self._loop.call_soon_threadsafe(self._publish_now, topic, data, when)
            except RuntimeError:  # loop closed: the agent is shutting down
                pass

    def _publish_now(self, topic: str, data: dict[str, Any], when: float) -> None:
        if self._pub is None:
            return
        self._event_seq += 1
        try:
            frames = encode_event(topic, when, self._event_seq, data)
        except (ValueError, TypeError) as exc:  # an event the agent built wrongly: log, go on
            self.events_dropped += 1
            log.warning("event on %r not published: %s", topic, exc)
            return
        # PUB never blocks: at its high-water mark ZeroMQ drops the event for that subscriber.
        asyncio.ensure_future(self._pub.send_multipart(frames)).add_done_callback(self._sent)
        self.events_published += 1

    @staticmethod
    def _sent(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.debug("event not sent: %s", future.exception())

    # --- requests --------------------------------------------------------------------------

    async def _serve(self) -> None:
        assert self._router is not None
        while True:
            try:
                frames = await self._router.recv_multipart(copy=False)
            except zmq.ZMQError as exc:
                log.warning("control socket receive failed: %s", exc)
                await asyncio.sleep(0.01)
                continue
            identity = frames[0].bytes
            body = frames[1:]
            delimiter: list[bytes] = []
            if len(body) >= 2 and body[0].bytes == b"":  # REQ-style framing
                delimiter, body = [b""], body[1:]
            operator = self._operator_of(frames[-1])
            if len(body) != 1:
                self._reject(
                    identity, delimiter, operator, None,
                    ErrorCode.BAD_ENVELOPE, "a request is exactly one message frame",
                )
                continue
            # Decoded here, before the in-flight check, so that even a `busy` reply carries the
            # request's id (bounded work: at most MAX_REQUEST_BYTES of JSON).
            try:
                request = decode_request(body[0].bytes)
            except ProtocolError as exc:
                self._reject(identity, delimiter, operator, exc.request_id, exc.code, exc.message)
                continue
            # `stop` may use more slots, so a flood of other requests cannot delay stopping.
            limit = self.max_in_flight * (4 if request.cmd == "stop" else 1)
            if len(self._tasks) >= limit:
                self._reject(
                    identity, delimiter, operator, request.id,
                    ErrorCode.BUSY, "agent busy; try again shortly",
                )
                continue
            task = asyncio.create_task(self._answer(identity, delimiter, request, operator))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _reject(
        self,
        identity: bytes,
        delimiter: list[bytes],
        operator: str,
        request_id: str | None,
        code: str,
        message: str,
    ) -> None:
        self.requests_rejected += 1
        self._log_rejection(operator, code, message)
        self._reply(identity, delimiter, encode_reply(request_id, error=(code, message)))

    def _log_rejection(self, operator: str, code: str, message: str) -> None:
        if self._rejections.note(operator, code, message) and self._loop is not None:
            self._loop.call_later(self._rejections.period_s, self._rejections.flush)

    def _operator_of(self, frame: zmq.Frame) -> str:
        if self.curve is None:
            return "local"
        try:
            return str(frame.get("User-Id") or "unknown-operator")
        except zmq.ZMQError:
            return "unknown-operator"

    def _reply(self, identity: bytes, delimiter: list[bytes], *frames: bytes) -> None:
        if self._router is None:
            return
        # ROUTER never blocks on send: a reply to a vanished peer (or one over its high-water
        # mark) is dropped, so this completes at once.
        sent = self._router.send_multipart([identity, *delimiter, *frames])
        asyncio.ensure_future(sent).add_done_callback(self._sent)  # zmq.asyncio: already a Future

    async def _answer(
        self, identity: bytes, delimiter: list[bytes], request: Request, operator: str
    ) -> None:
        attachment: bytes | None = None
        error: tuple[str, str] | None = None
        result: Any = None
        try:
            outcome = await asyncio.wait_for(self._dispatch(request), self.handler_timeout_s)
            if isinstance(outcome, Snapshot):
                result, attachment = outcome.metadata(), outcome.jpeg
            else:
                result = to_jsonable(outcome)
        except asyncio.TimeoutError:
            error = (ErrorCode.TIMEOUT, f"{request.cmd} took longer than {self.handler_timeout_s:g} s")
        except ControlError as exc:
            error = (exc.code, exc.message)
        except RobotUnavailable as exc:
            error = (ErrorCode.UNAVAILABLE, f"the robot cannot take commands now: {exc}")
        except ValueError as exc:
            error = (ErrorCode.REJECTED, str(exc))
        except LookupError as exc:
            error = (ErrorCode.NOT_FOUND, str(exc.args[0]) if exc.args else "not found")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a handler must not take the control socket down
            log.exception("%s request failed", request.cmd)
            error = (ErrorCode.INTERNAL, f"{request.cmd} failed inside the agent: {exc!r}")
        if error is None:
            self.requests_handled += 1
            frames = [encode_reply(request.id, result)]
            if attachment is not None:
                frames.append(attachment)
        else:
            self.requests_rejected += 1
            self._log_rejection(operator, error[0], f"{request.cmd}: {error[1]}")
            frames = [encode_reply(request.id, error=error)]
        self._reply(identity, delimiter, *frames)
        if request.cmd in MUTATING:
            self.publish(
                "operator",
                {
                    "operator": operator,
                    "cmd": request.cmd,
                    "args": request.args.model_dump(),
                    "ok": error is None,
                    "result": result if error is None else None,
                    "error": None if error is None else {"code": error[0], "message": error[1]},
                },
            )

    async def _dispatch(self, request: Request) -> Any:
        h = self.handler
        args = request.args
        if request.cmd == "hello":
            return {
                "protocol": PROTOCOL_VERSION,
                "agent": "spot-cue-agent",
                "events_endpoint": self.events_endpoint,
                "curve": self.curve is not None,
            }
        if request.cmd == "status":
            return await h.status()
        if request.cmd == "behaviors":
            return await h.behaviors()
        if request.cmd == "launch":
            assert isinstance(args, LaunchArgs)
            return await h.launch(args.name, dict(args.params))
        if request.cmd == "stop":
            assert isinstance(args, StopArgs)
            return await h.stop(args.reason)
        if request.cmd == "pause_cues":
            return await h.pause_cues()
        if request.cmd == "resume_cues":
            return await h.resume_cues()
        if request.cmd == "snapshot":
            assert isinstance(args, SnapshotArgs)
            return await h.snapshot(args.camera, args.draw_detections)
        raise ControlError(ErrorCode.UNKNOWN_COMMAND, f"unknown command {request.cmd!r}")
