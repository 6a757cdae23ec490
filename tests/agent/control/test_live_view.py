"""The Foxglove live view, seen through a real WebSocket client speaking Foxglove's protocol:
channels are advertised under the recording's topic names and frame ids, a subscriber receives
the camera's JPEG, its boxes, the transforms and sightings, every protocol name a Foxglove
viewer sends is accepted, nothing is encoded while nobody watches, and `spot-agent run
--live-view-port` serves it without the operator control socket."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import websockets
import yaml
from bosdyn.api import geometry_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from mcap.reader import make_reader
from support.ports import free_payload_port

from agent.control.live_view import LiveView
from agent.recording import format as fmt
from agent.recording.writer import Recorder
from perception.detection import FrameResult, Sighting
from perception.frame import Frame, PinholeIntrinsics

pytestmark = pytest.mark.timeout(60)
CAMERA = "frontleft_fisheye_image"
SENSOR = "frontleft_fisheye"


def _snapshot() -> geometry_pb2.FrameTreeSnapshot:
    """Rooted at body, as Spot sends it: odom and the camera hang off body."""
    snap = geometry_pb2.FrameTreeSnapshot()
    snap.child_to_parent_edge_map["body"].parent_frame_name = ""
    odom = snap.child_to_parent_edge_map["odom"]
    odom.parent_frame_name = "body"
    odom.parent_tform_child.position.x = -1.5  # body is 1.5 m ahead of the odom origin
    odom.parent_tform_child.rotation.w = 1.0
    cam = snap.child_to_parent_edge_map[SENSOR]
    cam.parent_frame_name = "body"
    cam.parent_tform_child.position.x = 0.4
    cam.parent_tform_child.rotation.w = 1.0
    return snap


def _frame_and_result(taken: float) -> tuple[Frame, FrameResult]:
    image = np.tile(np.arange(640, dtype=np.uint8)[None, :] // 3, (480, 1))
    ok, jpeg = cv2.imencode(".jpg", image)
    assert ok
    frame = Frame(
        CAMERA, image, taken + 50.0, taken,
        intrinsics=PinholeIntrinsics(330.0, 330.0, 320.0, 240.0),
        frame_name_image_sensor=SENSOR, transforms_snapshot=_snapshot(), encoded=jpeg.tobytes(),
    )
    person = Sighting("person", 0.87, CAMERA, (10.0, 20.0, 110.0, 220.0), (640, 480), taken,
                      position_odom=(3.5, 0.25, 0.0), distance_m=2.0)
    return frame, FrameResult(CAMERA, 0, taken + 50.0, taken, [person])


class FoxgloveClient:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.channels: dict[str, dict[str, Any]] = {}
        self.by_subscription: dict[int, str] = {}

    async def wait_for_channel(self, topic: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while topic not in self.channels:
            message = await asyncio.wait_for(self.ws.recv(), max(0.01, deadline - time.monotonic()))
            if isinstance(message, str):
                body = json.loads(message)
                if body.get("op") == "advertise":
                    for channel in body["channels"]:
                        self.channels[channel["topic"]] = channel
        return self.channels[topic]

    async def subscribe(self, *topics: str) -> None:
        subscriptions = []
        for topic in topics:
            channel = await self.wait_for_channel(topic)
            self.by_subscription[len(self.by_subscription) + 1] = topic
            subscriptions.append({"id": len(self.by_subscription), "channelId": channel["id"]})
        await self.ws.send(json.dumps({"op": "subscribe", "subscriptions": subscriptions}))

    async def next_message(self, timeout: float = 5.0) -> tuple[str, int, bytes]:
        """(topic, log time ns, payload) of the next message-data frame."""
        deadline = time.monotonic() + timeout
        while True:
            message = await asyncio.wait_for(self.ws.recv(), max(0.01, deadline - time.monotonic()))
            if isinstance(message, bytes) and message[0] == 1:
                subscription, log_time = struct.unpack_from("<IQ", message, 1)
                return self.by_subscription[subscription], log_time, message[13:]

    def decode(self, topic: str, payload: bytes) -> Any:
        """A protobuf payload, decoded with the schema the server advertised."""
        channel = self.channels[topic]
        pool = descriptor_pool.DescriptorPool()
        for file in descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(channel["schema"])).file:
            pool.Add(file)
        cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(channel["schemaName"]))
        return cls.FromString(payload)


async def _receive_all(
    view: LiveView, client: FoxgloveClient, frame: Frame, result: FrameResult, topics: list[str]
) -> dict[str, tuple[int, Any]]:
    """Subscribe to `topics` and offer the frame until each delivered a message."""
    view.offer_frame(frame, result)
    await client.subscribe(*topics)
    got: dict[str, tuple[int, Any]] = {}
    deadline = time.monotonic() + 10
    while len(got) < len(topics) and time.monotonic() < deadline:
        view.offer_frame(frame, result)  # again: the first may have gone before we subscribed
        try:
            topic, log_time, payload = await client.next_message(timeout=0.5)
        except TimeoutError:
            continue
        if topic != fmt.TOPIC_AGENT_STATE and topic not in got:
            got[topic] = (log_time, client.decode(topic, payload))
    return got


LIVE_TOPICS = [
    f"/camera/{CAMERA}/compressed",
    f"/camera/{CAMERA}/annotations",
    f"/camera/{CAMERA}/calibration",
    "/tf",
    "/sightings",
]


def test_subscriber_gets_image_boxes_transforms_sightings_and_state() -> None:
    taken = time.time()
    frame, result = _frame_and_result(taken)

    async def scenario(view: LiveView) -> dict[str, tuple[int, Any]]:
        async with websockets.connect(f"ws://127.0.0.1:{view.port}", subprotocols=["foxglove.sdk.v1"]) as ws:
            client = FoxgloveClient(ws)
            got = await _receive_all(view, client, frame, result, LIVE_TOPICS)
            assert client.channels["/tf"]["schemaName"] == "foxglove.FrameTransforms"
            view.offer_state({"behavior": {"name": "sit"}, "cues_paused": False})
            await client.subscribe(fmt.TOPIC_AGENT_STATE)
            while True:
                view.offer_state({"behavior": {"name": "sit"}, "cues_paused": False})
                topic, _, payload = await client.next_message()
                if topic == fmt.TOPIC_AGENT_STATE:
                    assert json.loads(payload) == {"behavior": {"name": "sit"}, "cues_paused": False}
                    return got

    with LiveView(host="127.0.0.1", port=0, max_hz=10) as view:
        got = asyncio.run(scenario(view))
        assert view.frames_sent >= 1
    stamp_ns = int(round(taken * 1e9))
    log_time, image = got[f"/camera/{CAMERA}/compressed"]
    assert bytes(image.data) == frame.encoded  # the robot's own JPEG, not re-encoded
    assert abs(log_time - stamp_ns) < 1000 and image.frame_id == SENSOR
    _, boxes = got[f"/camera/{CAMERA}/annotations"]
    assert boxes.texts[0].text.startswith("person 0.87")
    _, tf = got["/tf"]
    edges = {(t.parent_frame_id, t.child_frame_id): t.translation for t in tf.transforms}
    assert set(edges) == {("odom", "body"), ("body", SENSOR)}
    assert (edges[("odom", "body")].x, edges[("body", SENSOR)].x) == pytest.approx((1.5, 0.4))
    _, scene = got["/sightings"]
    (entity,) = scene.entities
    assert entity.frame_id == "odom"
    assert (entity.spheres[0].pose.position.x, entity.spheres[0].pose.position.y) == (3.5, 0.25)


def _recorded_topics(path: Path) -> dict[str, tuple[str, str]]:
    """topic -> (schema name, frame id of its first message if it has one) of a recording."""
    out: dict[str, tuple[str, str]] = {}
    with open(path, "rb") as f:
        for schema, channel, message in make_reader(f).iter_messages():
            if channel.topic in out or schema is None:
                continue
            frame_id = ""
            if schema.encoding == "protobuf":
                pool = descriptor_pool.DescriptorPool()
                for file in descriptor_pb2.FileDescriptorSet.FromString(schema.data).file:
                    pool.Add(file)
                cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(schema.name))
                frame_id = getattr(cls.FromString(message.data), "frame_id", "")
            out[channel.topic] = (schema.name, frame_id)
    return out


def test_live_view_and_recording_use_one_naming_scheme(tmp_path: Path) -> None:
    """One Foxglove layout serves both: same topics, schemas and frame ids for the same frame."""
    frame, result = _frame_and_result(time.time())
    with Recorder(tmp_path / "run.mcap") as recorder:
        recorder.record_frame(frame)
        recorder.record_observed(result, frame.acquisition_time_local)
    recorded = _recorded_topics(tmp_path / "run.mcap")

    async def scenario(view: LiveView) -> dict[str, tuple[str, str]]:
        async with websockets.connect(f"ws://127.0.0.1:{view.port}", subprotocols=["foxglove.sdk.v1"]) as ws:
            client = FoxgloveClient(ws)
            got = await _receive_all(view, client, frame, result, LIVE_TOPICS)
            return {
                topic: (client.channels[topic]["schemaName"], getattr(message, "frame_id", ""))
                for topic, (_, message) in got.items()
            }

    with LiveView(port=0, max_hz=10) as view:
        live = asyncio.run(scenario(view))
    assert set(live) == set(LIVE_TOPICS)
    for topic, (schema, frame_id) in live.items():
        assert recorded[topic] == (schema, frame_id), topic


@pytest.mark.parametrize(
    ("offered", "agreed"),
    [
        (["foxglove.sdk.v1"], "foxglove.sdk.v1"),  # Foxglove 2.x, foxglove_bridge 3.x
        (["foxglove.websocket.v1"], "foxglove.websocket.v1"),  # older Foxglove, Lichtblick, ws-protocol
        (["foxglove.websocket.v1", "foxglove.sdk.v1"], "foxglove.sdk.v1"),
    ],
)
def test_every_foxglove_protocol_name_is_served(offered: list[str], agreed: str) -> None:
    frame, result = _frame_and_result(time.time())

    async def scenario(view: LiveView) -> None:
        async with websockets.connect(f"ws://127.0.0.1:{view.port}", subprotocols=offered) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol == agreed
            info = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert info["op"] == "serverInfo"
            client = FoxgloveClient(ws)
            got = await _receive_all(view, client, frame, result, [f"/camera/{CAMERA}/compressed"])
            assert bytes(got[f"/camera/{CAMERA}/compressed"][1].data) == frame.encoded

    with LiveView(port=0, max_hz=10) as view:
        asyncio.run(scenario(view))


def test_other_protocols_are_refused_and_the_view_keeps_serving() -> None:
    async def scenario(view: LiveView) -> None:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(f"ws://127.0.0.1:{view.port}", subprotocols=["mqtt"]):  # type: ignore[list-item]
                pass
        assert refused.value.response.status_code == 400
        with socket.create_connection(("127.0.0.1", view.port)) as junk:
            junk.sendall(b"\x00\x01 not http at all\r\n\r\n")
        async with websockets.connect(f"ws://127.0.0.1:{view.port}", subprotocols=["foxglove.sdk.v1"]) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["op"] == "serverInfo"

    with LiveView(port=0) as view:
        asyncio.run(scenario(view))


def test_depth_frames_go_out_as_32fc1_like_in_recordings() -> None:
    depth = np.full((240, 424), 1.5, dtype=np.float32)
    frame = Frame("frontleft_depth", depth, 1.0, time.time(), is_depth=True)

    async def scenario(view: LiveView) -> Any:
        async with websockets.connect(f"ws://127.0.0.1:{view.port}", subprotocols=["foxglove.sdk.v1"]) as ws:
            client = FoxgloveClient(ws)
            view.offer_frame(frame)
            await client.subscribe("/camera/frontleft_depth/image")
            while True:
                view.offer_frame(frame)
                try:
                    topic, _, payload = await client.next_message(timeout=0.5)
                except TimeoutError:
                    continue
                return client.decode(topic, payload)

    with LiveView(port=0, max_hz=10) as view:
        raw = asyncio.run(scenario(view))
    assert (raw.encoding, raw.width, raw.height) == ("32FC1", 424, 240)
    assert np.array_equal(np.frombuffer(raw.data, "<f4").reshape(240, 424), depth)


def test_nothing_is_encoded_without_subscribers_and_rate_is_capped() -> None:
    image = np.zeros((480, 640), dtype=np.uint8)

    def offer() -> None:
        view.offer_frame(Frame(CAMERA, image, 0.0, time.time()))

    with LiveView(port=0, max_hz=5) as view:
        for _ in range(30):
            offer()
            time.sleep(0.01)
        time.sleep(0.3)
        assert view.frames_sent == 0  # nobody watching: no JPEG encoding at all

        async def watch_for(seconds: float) -> None:
            async with websockets.connect(f"ws://127.0.0.1:{view.port}", subprotocols=["foxglove.sdk.v1"]) as ws:
                client = FoxgloveClient(ws)
                offer()
                await client.subscribe(f"/camera/{CAMERA}/compressed")
                await asyncio.sleep(0.3)
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    offer()  # offered at ~100 Hz
                    await asyncio.sleep(0.01)

        sent_before = view.frames_sent
        asyncio.run(watch_for(1.0))
        sent = view.frames_sent - sent_before
        assert 2 <= sent <= 8  # about max_hz per second, not the 100 Hz offered
        assert view.frames_skipped > 50


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_run_serves_the_live_view_without_the_control_socket(tmp_path: Path) -> None:
    """`spot-agent run --live-view-port P` alone (no --control-endpoint): a viewer sees the
    camera, its transforms and the tag placed in odom."""
    from agent.demo import sim_agent_config
    from configs import SHIPPED_DIR
    from sim.server import SimServer

    sim = SimServer.start(scenario=SHIPPED_DIR / "scenarios" / "fiducial_ahead.yaml", port=0)
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump(sim_agent_config(sim).model_dump(mode="json")))
    port = free_payload_port(21600)
    log_path = tmp_path / "agent.log"
    with open(log_path, "w") as agent_log:  # a file, not a pipe: the agent never blocks on it
        process = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "run", "--config", str(config),
             "--live-view-port", str(port), "--log-level", "warning"],
            stdout=agent_log, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "NO_COLOR": "1"},
        )
    deadline = time.monotonic() + 150  # one budget for start-up, streaming and the first tag

    def left() -> float:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no tag sighting in time; agent log:\n{log_path.read_text()[-3000:]}"
        return remaining

    async def look() -> dict[str, Any]:
        while True:  # the live view is up before the robot is touched; retry until then
            assert process.poll() is None, log_path.read_text()[-3000:]
            try:
                ws = await websockets.connect(f"ws://127.0.0.1:{port}", subprotocols=["foxglove.websocket.v1"])
                break
            except OSError:
                left()
                await asyncio.sleep(0.5)
        async with ws:
            client = FoxgloveClient(ws)
            topics = [f"/camera/{CAMERA}/compressed", "/tf", "/sightings"]
            for topic in topics:
                await client.wait_for_channel(topic, timeout=left())
            await client.subscribe(*topics)
            got: dict[str, Any] = {}
            while len(got) < len(topics):
                topic, _, payload = await client.next_message(timeout=min(10.0, left()))
                got.setdefault(topic, client.decode(topic, payload))
            return got

    try:
        got = asyncio.run(look())
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        sim.stop()
    assert process.returncode == 0, log_path.read_text()[-3000:]
    image = got[f"/camera/{CAMERA}/compressed"]
    assert bytes(image.data[:2]) == b"\xff\xd8" and image.frame_id == SENSOR
    children = {t.child_frame_id for t in got["/tf"].transforms}
    assert {"body"} < children
    tag = [e for e in got["/sightings"].entities if "tag:1" in e.texts[0].text]
    assert tag, [e.texts[0].text for e in got["/sightings"].entities]
    position = tag[0].cubes[0].pose.position
    assert abs(position.x - 3.0) < 0.3 and abs(position.y) < 0.3  # fiducial_ahead: tag 1 at (3, 0)
