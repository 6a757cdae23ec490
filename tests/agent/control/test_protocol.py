"""The control protocol's decoder: every valid request decodes, everything else is a
`ProtocolError` with the right code, and no input makes it raise anything else."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.control.protocol import (
    COMMANDS,
    MAX_REQUEST_BYTES,
    ErrorCode,
    LaunchArgs,
    ProtocolError,
    Request,
    SnapshotArgs,
    StopArgs,
    decode_event,
    decode_reply,
    decode_request,
    encode_event,
    encode_reply,
    encode_request,
)


def req(cmd: str, args: dict | None = None, **envelope: object) -> bytes:
    body = {"v": 1, "id": "r1", "cmd": cmd, "args": args or {}}
    body.update(envelope)
    return json.dumps(body).encode()


def code_of(data: bytes) -> str:
    with pytest.raises(ProtocolError) as info:
        decode_request(data)
    return info.value.code


# --- valid requests ---------------------------------------------------------------------------


def test_every_command_without_required_args_decodes() -> None:
    for cmd in ("hello", "status", "behaviors", "stop", "pause_cues", "resume_cues"):
        request = decode_request(req(cmd))
        assert (request.id, request.cmd) == ("r1", cmd)


def test_launch_keeps_typed_params() -> None:
    request = decode_request(
        req("launch", {"name": "turn_toward", "params": {"target": "person", "speed": 0.4, "n": 2, "loud": True, "tags": [1, 2]}})
    )
    assert isinstance(request.args, LaunchArgs)
    assert request.args.name == "turn_toward"
    assert request.args.params == {"target": "person", "speed": 0.4, "n": 2, "loud": True, "tags": [1, 2]}
    assert type(request.args.params["n"]) is int and type(request.args.params["loud"]) is bool


def test_launch_accepts_structured_params() -> None:
    steps = [{"behavior": "sit", "params": {}}, {"behavior": "stand"}]
    request = decode_request(req("launch", {"name": "sequence", "params": {"steps": steps}}))
    assert isinstance(request.args, LaunchArgs) and request.args.params["steps"] == steps


def test_defaults_fill_in() -> None:
    stop = decode_request(req("stop"))
    assert isinstance(stop.args, StopArgs) and stop.args.reason == "operator stop"
    snap = decode_request(req("snapshot", {"camera": "frontleft_fisheye_image"}))
    assert isinstance(snap.args, SnapshotArgs) and snap.args.draw_detections is True


def test_args_may_be_omitted() -> None:
    assert decode_request(b'{"v":1,"id":"a","cmd":"status"}').cmd == "status"


def test_request_round_trips() -> None:
    request = decode_request(req("launch", {"name": "sit", "params": {"x": 1.5}}))
    assert decode_request(request.to_bytes()) == request


# --- rejected requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", ErrorCode.BAD_JSON),
        (b"not json", ErrorCode.BAD_JSON),
        (b"\xff\xfe{}", ErrorCode.BAD_JSON),
        (b'{"v":1,"id":"a","cmd":"status","args":{"x":NaN}}', ErrorCode.BAD_JSON),
        (b'{"v":1,"id":"a","cmd":"status","cmd":"stop"}', ErrorCode.BAD_JSON),
        (b"[" * 5000 + b"]" * 5000, ErrorCode.BAD_JSON),
        (b'{"v":1,"id":"a","cmd":"status","args":' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"}", ErrorCode.BAD_JSON),
        (b"1" * 5000, ErrorCode.BAD_JSON),  # beyond Python's int-from-text limit
        (b"[1, 2]", ErrorCode.BAD_ENVELOPE),
        (b'"stop"', ErrorCode.BAD_ENVELOPE),
        (b'{"id":"a","cmd":"stop"}', ErrorCode.BAD_VERSION),
        (b'{"v":2,"id":"a","cmd":"stop"}', ErrorCode.BAD_VERSION),
        (b'{"v":"1","id":"a","cmd":"stop"}', ErrorCode.BAD_VERSION),
        (b'{"v":true,"id":"a","cmd":"stop"}', ErrorCode.BAD_VERSION),
        (b'{"v":1.0,"id":"a","cmd":"stop"}', ErrorCode.BAD_VERSION),
        (b'{"v":1,"cmd":"stop"}', ErrorCode.BAD_ENVELOPE),
        (b'{"v":1,"id":"","cmd":"stop"}', ErrorCode.BAD_ENVELOPE),
        (b'{"v":1,"id":7,"cmd":"stop"}', ErrorCode.BAD_ENVELOPE),
        (b'{"v":1,"id":"a","cmd":"stop","extra":1}', ErrorCode.BAD_ENVELOPE),
        (b'{"v":1,"id":"a","cmd":"stop","args":[]}', ErrorCode.BAD_ARGS),
        (b'{"v":1,"id":"a","cmd":"self_destruct"}', ErrorCode.UNKNOWN_COMMAND),
        (req("launch"), ErrorCode.BAD_ARGS),
        (req("launch", {"name": "sit", "colour": "red"}), ErrorCode.BAD_ARGS),
        (req("launch", {"name": 5}), ErrorCode.BAD_ARGS),
        (req("launch", {"name": "../etc"}), ErrorCode.BAD_ARGS),
        (req("launch", {"name": "sit", "params": {"bad key": 1}}), ErrorCode.BAD_ARGS),
        (req("launch", {"name": "sit", "params": {"x": {"bad key": 1}}}), ErrorCode.BAD_ARGS),
        (req("launch", {"name": "sit", "params": {"x": [{"y": "z" * 300}]}}), ErrorCode.BAD_ARGS),
        (req("launch", {"name": "sit", "params": {"x": "y" * 300}}), ErrorCode.BAD_ARGS),
        (req("launch", {"name": "sit", "params": {"x": 2**60}}), ErrorCode.BAD_ARGS),
        (req("launch", {"name": "sit", "params": {f"p{i}": i for i in range(40)}}), ErrorCode.BAD_ARGS),
        (req("launch", {"name": "sit", "params": {"x": list(range(40))}}), ErrorCode.BAD_ARGS),
        (req("stop", {"reason": 3}), ErrorCode.BAD_ARGS),
        (req("status", {"verbose": True}), ErrorCode.BAD_ARGS),
        (req("snapshot", {}), ErrorCode.BAD_ARGS),
        (req("snapshot", {"camera": "front", "draw_detections": "yes"}), ErrorCode.BAD_ARGS),
    ],
)
def test_bad_requests_are_refused_with_their_code(data: bytes, code: str) -> None:
    assert code_of(data) == code


def test_oversized_request_is_refused_before_parsing() -> None:
    data = req("launch", {"name": "sit", "params": {"x": "a" * 200}}) + b" " * MAX_REQUEST_BYTES
    assert code_of(data) == ErrorCode.TOO_LARGE


def test_error_keeps_request_id_when_readable() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_request(req("launch", {"name": 1}, id="abc"))
    assert info.value.request_id == "abc"
    assert "launch" in info.value.message and "name" in info.value.message


def test_unknown_command_message_lists_commands() -> None:
    with pytest.raises(ProtocolError) as info:
        decode_request(req("fly"))
    assert "'fly'" in info.value.message and "launch" in info.value.message


# --- fuzzing: only Request or ProtocolError, ever ---------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
names = st.sampled_from(["sit", "stand", "turn_toward", "", "a b", "x" * 80, "frontleft_fisheye_image"]) | st.text(max_size=12)
args_like = st.dictionaries(
    st.sampled_from(["name", "params", "reason", "camera", "draw_detections", "extra"]),
    names | json_values,
    max_size=4,
)
envelopes = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1, 2, "1", True, 1.0, None]),
        "id": st.sampled_from(["a", "", "x" * 65]) | st.text(max_size=8) | st.integers(),
        "cmd": st.sampled_from(list(COMMANDS) + ["nope", ""]),
        "args": args_like | json_values,
    },
    optional={"extra": json_values},
)


def assert_decodes_or_refuses(data: bytes) -> None:
    try:
        result = decode_request(data)
    except ProtocolError as exc:
        assert exc.code in vars(ErrorCode).values() and exc.message
    else:
        assert isinstance(result, Request) and result.cmd in COMMANDS
        # whatever was accepted re-encodes to something accepted identically
        assert decode_request(result.to_bytes()) == result


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_fuzz_random_bytes(data: bytes) -> None:
    assert_decodes_or_refuses(data)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fuzz_random_json(value: object) -> None:
    assert_decodes_or_refuses(json.dumps(value).encode())


@settings(max_examples=500, deadline=None)
@given(envelopes)
def test_fuzz_request_shaped_json(value: dict) -> None:
    assert_decodes_or_refuses(json.dumps(value).encode())


@settings(max_examples=200, deadline=None)
@given(envelopes, st.integers(min_value=0, max_value=200), st.binary(min_size=1, max_size=3))
def test_fuzz_mangled_requests(value: dict, cut: int, junk: bytes) -> None:
    data = json.dumps(value).encode()
    assert_decodes_or_refuses(data[:cut] + junk + data[cut:])


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=MAX_REQUEST_BYTES + 1, max_value=MAX_REQUEST_BYTES * 4))
def test_fuzz_oversized(size: int) -> None:
    assert code_of(b"{" + b" " * (size - 2) + b"}") == ErrorCode.TOO_LARGE


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=3))
def test_fuzz_reply_and_event_decoders(frames: list[bytes]) -> None:
    for decoder in (decode_reply, decode_event):
        try:
            decoder(frames)
        except ProtocolError:
            pass


# --- replies and events --------------------------------------------------------------------


def test_reply_round_trip() -> None:
    ok = decode_reply([encode_reply("r1", {"a": [1, 2]})])
    assert ok.ok and ok.id == "r1" and ok.result == {"a": [1, 2]}
    bad = decode_reply([encode_reply("r2", error=("rejected", "no such behavior"))])
    assert not bad.ok and bad.error is not None and bad.error.code == "rejected"
    snap = decode_reply([encode_reply("r3", {"bytes": 3}), b"jpg"])
    assert snap.attachment == b"jpg"


def test_event_round_trip_and_numpy_data() -> None:
    import numpy as np

    frames = encode_event("detection", 12.5, 7, {"box": np.array([1.0, 2.0]), "score": np.float32(0.5), "nan": float("nan")})
    assert frames[0] == b"detection"
    event = decode_event(frames)
    assert (event.topic, event.time, event.seq) == ("detection", 12.5, 7)
    assert event.data == {"box": [1.0, 2.0], "score": 0.5, "nan": None}


def test_event_topic_must_match_its_frame() -> None:
    frames = encode_event("cue", 1.0, 1, {})
    with pytest.raises(ProtocolError):
        decode_event([b"behavior", frames[1]])


def test_encode_request_is_decodable() -> None:
    request = decode_request(encode_request("snapshot", {"camera": "back_fisheye_image"}, "id9"))
    assert request.args == SnapshotArgs(camera="back_fisheye_image")
