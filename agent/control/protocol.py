"""The operator control protocol, version 1: what travels over the ZeroMQ sockets.

Requests and replies are UTF-8 JSON objects (one ZeroMQ frame each; a snapshot reply carries
its JPEG in a second frame). Events are two frames: the topic (so subscribers can filter with
ZeroMQ prefix subscriptions) and the JSON envelope. PROTOCOL.md next to this file documents
every message; the models below are the executable form of that document.

Decoding is the security boundary: `decode_request` turns any byte string into either a valid
`Request` or a `ProtocolError` with a machine-readable code and a sentence for a person. It
never raises anything else, whatever the bytes (the fuzz test in tests/agent/control/test_protocol.py
holds it to that).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PROTOCOL_VERSION = 1
MAX_REQUEST_BYTES = 64 * 1024
"""Requests larger than this get a `too_large` error reply and are not parsed."""
MAX_TRANSPORT_BYTES = 1024 * 1024
"""ZeroMQ's own limit (ZMQ_MAXMSGSIZE): bigger frames are dropped and their peer disconnected
before they are even buffered, so a misbehaving client cannot make the agent allocate them."""
MAX_JSON_DEPTH = 32

Command = Literal[
    "hello", "status", "behaviors", "launch", "stop", "pause_cues", "resume_cues", "snapshot"
]
COMMANDS: tuple[str, ...] = Command.__args__  # type: ignore[attr-defined]

EVENT_TOPICS: tuple[str, ...] = (
    "detection",  # what a camera's frame contained
    "cue",  # a cue rule fired
    "behavior",  # a behavior started / finished / was pre-empted or stopped
    "command",  # a motion command was sent to (or refused by) the robot
    "health",  # camera rates, frame ages, robot lease / E-Stop / power state
    "operator",  # an operator request changed something (audit trail)
)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
_TOPIC = re.compile(r"^[a-z][a-z0-9_.]{0,31}$")


class ErrorCode:
    """Machine-readable error codes (PROTOCOL.md explains each)."""

    TOO_LARGE = "too_large"
    BAD_JSON = "bad_json"
    BAD_ENVELOPE = "bad_envelope"
    BAD_VERSION = "bad_version"
    UNKNOWN_COMMAND = "unknown_command"
    BAD_ARGS = "bad_args"
    REJECTED = "rejected"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"
    BUSY = "busy"
    TIMEOUT = "timeout"
    INTERNAL = "internal"


class ProtocolError(Exception):
    """A message that does not follow the protocol. `request_id` is set when it could be read,
    so the error reply can still be matched to its request."""

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


# --- per-command arguments ---------------------------------------------------------------


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class NoArgs(_Args):
    """`hello`, `status`, `behaviors`, `pause_cues`, `resume_cues` take no arguments."""


def _check_param_value(key: str, value: Any) -> None:
    """Parameters are JSON values (the behavior engine checks their meaning); bound their size
    so a request cannot smuggle anything unreasonable past the envelope."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if abs(value) > 2**53:
            raise ValueError(f"parameter {key!r}: integer out of range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"parameter {key!r}: numbers must be finite")
    elif isinstance(value, str):
        if len(value) > 256:
            raise ValueError(f"parameter {key!r}: text longer than 256 characters")
    elif isinstance(value, list):
        if len(value) > 32:
            raise ValueError(f"parameter {key!r}: at most 32 list items")
        for item in value:
            _check_param_value(key, item)
    elif isinstance(value, dict):
        if len(value) > 32:
            raise ValueError(f"parameter {key!r}: at most 32 keys in an object")
        for name, item in value.items():
            if not _NAME.match(name):
                raise ValueError(f"parameter {key!r}: key {name[:70]!r} is not a plain identifier")
            _check_param_value(key, item)
    else:
        raise ValueError(f"parameter {key!r}: not a JSON value")


class LaunchArgs(_Args):
    name: str = Field(description="Behavior name, as listed by `behaviors`.")
    params: dict[str, Any] = Field(
        default_factory=dict, max_length=32, description="Behavior parameters by name."
    )

    @field_validator("name")
    @classmethod
    def _name_shape(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("a behavior name is 1-64 letters, digits, '_', '.' or '-'")
        return value

    @field_validator("params")
    @classmethod
    def _params_shape(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, item in value.items():
            if not _NAME.match(key):
                raise ValueError(f"parameter name {key[:70]!r} is not a plain identifier")
            _check_param_value(key, item)
        return value


class StopArgs(_Args):
    reason: str = Field("operator stop", max_length=200, description="Shown in events and logs.")


class SnapshotArgs(_Args):
    camera: str = Field(description="Camera (image source) name.")
    draw_detections: bool = Field(True, description="Draw the latest detections on the frame.")

    @field_validator("camera")
    @classmethod
    def _camera_shape(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("a camera name is 1-64 letters, digits, '_', '.' or '-'")
        return value


ARGS_MODELS: dict[str, type[_Args]] = {
    "hello": NoArgs,
    "status": NoArgs,
    "behaviors": NoArgs,
    "launch": LaunchArgs,
    "stop": StopArgs,
    "pause_cues": NoArgs,
    "resume_cues": NoArgs,
    "snapshot": SnapshotArgs,
}
assert set(ARGS_MODELS) == set(COMMANDS)


# --- envelopes ------------------------------------------------------------------------------


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    v: int
    id: str = Field(min_length=1, max_length=64)
    cmd: str = Field(min_length=1, max_length=64)
    args: Any = Field(default_factory=dict)  # the command's model checks it: `bad_args`


@dataclass(frozen=True)
class Request:
    """A validated request: `args` is the command's own arguments model."""

    id: str
    cmd: str
    args: _Args

    def to_bytes(self) -> bytes:
        return encode_request(self.cmd, self.args.model_dump(), self.id)


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str


@dataclass(frozen=True)
class Reply:
    id: str | None
    ok: bool
    result: Any = None
    error: ErrorInfo | None = None
    attachment: bytes | None = None  # second frame (snapshot JPEG)


@dataclass(frozen=True)
class Event:
    topic: str
    time: float
    seq: int
    data: dict[str, Any] = field(default_factory=dict)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key[:40]!r}")
        out[key] = value
    return out


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value, stopping early past `limit`."""
    stack = [(value, 1)]
    deepest = 0
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def _parse_json(data: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate keys, bounded nesting."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(ErrorCode.BAD_JSON, f"message is not UTF-8 text ({exc.reason})") from None
    try:
        value = json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys
        )
    except RecursionError:
        raise ProtocolError(
            ErrorCode.BAD_JSON, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError as exc:  # JSONDecodeError, duplicates, NaN, huge integers
        raise ProtocolError(ErrorCode.BAD_JSON, f"message is not valid JSON: {exc}") from None
    if _depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ProtocolError(ErrorCode.BAD_JSON, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def printable(value: object, limit: int = 80) -> str:
    """`value` as text safe for a log line or a message: control characters (NUL, newline,
    escape sequences...) escaped as `\\xNN`, cut to about `limit` characters. Requests carry
    client-chosen text (keys, names); it must never reach a log raw."""
    text = str(value)
    cut = len(text) > limit
    text = text[:limit]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text + "..." if cut else text


def _first_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:3]:
        where = ".".join(printable(p, 40) for p in e["loc"]) or "(top level)"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def decode_request(data: bytes) -> Request:
    """Validate one request frame. Raises `ProtocolError` for anything that is not a valid
    version-1 request (and nothing else)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError(ErrorCode.BAD_ENVELOPE, "a request is a byte string")
    data = bytes(data)
    if len(data) > MAX_REQUEST_BYTES:
        raise ProtocolError(
            ErrorCode.TOO_LARGE,
            f"request is {len(data)} bytes; the limit is {MAX_REQUEST_BYTES} bytes",
        )
    value = _parse_json(data)
    if not isinstance(value, dict):
        raise ProtocolError(
            ErrorCode.BAD_ENVELOPE, f"a request is a JSON object, not {type(value).__name__}"
        )
    raw_id = value.get("id")
    request_id = raw_id if isinstance(raw_id, str) and 0 < len(raw_id) <= 64 else None
    version = value.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.BAD_VERSION,
            f"protocol version {version!r} is not supported; this agent speaks v{PROTOCOL_VERSION}",
            request_id,
        )
    try:
        envelope = _Envelope.model_validate(value)
    except ValidationError as exc:
        raise ProtocolError(ErrorCode.BAD_ENVELOPE, _first_error(exc), request_id) from None
    model = ARGS_MODELS.get(envelope.cmd)
    if model is None:
        raise ProtocolError(
            ErrorCode.UNKNOWN_COMMAND,
            f"unknown command '{printable(envelope.cmd, 64)}'; known commands: {', '.join(COMMANDS)}",
            envelope.id,
        )
    if not isinstance(envelope.args, dict):
        raise ProtocolError(
            ErrorCode.BAD_ARGS,
            f"{envelope.cmd}: args must be a JSON object, not {_json_type(envelope.args)}",
            envelope.id,
        )
    try:
        args = model.model_validate(envelope.args)
    except ValidationError as exc:
        raise ProtocolError(
            ErrorCode.BAD_ARGS, f"{envelope.cmd}: {_first_error(exc)}", envelope.id
        ) from None
    return Request(id=envelope.id, cmd=envelope.cmd, args=args)


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def encode_request(cmd: str, args: dict[str, Any] | None, request_id: str) -> bytes:
    return _dumps({"v": PROTOCOL_VERSION, "id": request_id, "cmd": cmd, "args": args or {}})


def encode_reply(
    request_id: str | None, result: Any = None, error: tuple[str, str] | None = None
) -> bytes:
    body: dict[str, Any] = {"v": PROTOCOL_VERSION, "id": request_id, "ok": error is None}
    if error is None:
        body["result"] = result
    else:
        body["error"] = {"code": error[0], "message": error[1]}
    return _dumps(body)


def decode_reply(frames: list[bytes]) -> Reply:
    """Validate a reply (client side). Raises `ProtocolError` on anything malformed."""
    if not 1 <= len(frames) <= 2:
        raise ProtocolError(ErrorCode.BAD_ENVELOPE, f"a reply has 1 or 2 frames, got {len(frames)}")
    value = _parse_json(frames[0])
    if not isinstance(value, dict) or value.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(ErrorCode.BAD_VERSION, "reply is not a version-1 protocol object")
    request_id = value.get("id")
    ok = value.get("ok")
    if not isinstance(ok, bool) or not (request_id is None or isinstance(request_id, str)):
        raise ProtocolError(ErrorCode.BAD_ENVELOPE, "reply lacks a boolean 'ok' or a string 'id'")
    attachment = frames[1] if len(frames) == 2 else None
    if ok:
        return Reply(request_id, True, value.get("result"), None, attachment)
    error = value.get("error")
    if not isinstance(error, dict) or not all(
        isinstance(error.get(k), str) for k in ("code", "message")
    ):
        raise ProtocolError(ErrorCode.BAD_ENVELOPE, "error reply lacks 'code' and 'message'")
    return Reply(request_id, False, None, ErrorInfo(error["code"], error["message"]), attachment)


def encode_event(topic: str, time: float, seq: int, data: dict[str, Any]) -> list[bytes]:
    if not _TOPIC.match(topic):
        raise ValueError(f"bad event topic {topic!r}")
    envelope = {"v": PROTOCOL_VERSION, "topic": topic, "time": time, "seq": seq, "data": data}
    return [topic.encode("ascii"), _dumps(envelope)]


def decode_event(frames: list[bytes]) -> Event:
    """Validate an event (subscriber side). Raises `ProtocolError` on anything malformed."""
    if len(frames) != 2:
        raise ProtocolError(ErrorCode.BAD_ENVELOPE, f"an event has 2 frames, got {len(frames)}")
    value = _parse_json(frames[1])
    if not isinstance(value, dict) or value.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(ErrorCode.BAD_VERSION, "event is not a version-1 protocol object")
    topic, time, seq, data = (value.get(k) for k in ("topic", "time", "seq", "data"))
    if (
        not isinstance(topic, str)
        or topic.encode() != frames[0]
        or not isinstance(time, (int, float))
        or isinstance(time, bool)
        or not isinstance(seq, int)
        or not isinstance(data, dict)
    ):
        raise ProtocolError(ErrorCode.BAD_ENVELOPE, "event lacks topic/time/seq/data")
    return Event(topic, float(time), seq, data)


def to_jsonable(value: Any) -> Any:
    """Plain JSON types from what the agent has at hand (numpy scalars and arrays, tuples,
    dataclasses, pydantic models). Non-finite floats become None: JSON has no NaN."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, BaseModel):
        return to_jsonable(value.model_dump())
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return to_jsonable(asdict(value))
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return to_jsonable(value.tolist())
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return str(value)


def _dumps(value: Any) -> bytes:
    return json.dumps(to_jsonable(value), separators=(",", ":"), allow_nan=False).encode("utf-8")
