"""The Foxglove live view, seen through a real WebSocket client speaking Foxglove's protocol:
channels are advertised, a subscriber receives the camera's JPEG and the detection boxes, and
nothing is encoded while nobody watches."""

from __future__ import annotations

import asyncio
import json
import struct
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pytest
import websockets

from agent.control.live_view import LiveView

pytestmark = pytest.mark.timeout(60)
CAMERA = "frontleft_fisheye_image"


@dataclass(frozen=True)
class Box:
    label: str
    score: float
    box: tuple[float, float, float, float]


class FoxgloveClient:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.channels: dict[str, dict[str, Any]] = {}

    async def wait_for_channel(self, topic: str, timeout: float = 3.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while topic not in self.channels:
            message = await asyncio.wait_for(self.ws.recv(), max(0.01, deadline - time.monotonic()))
            if isinstance(message, str):
                body = json.loads(message)
                if body.get("op") == "advertise":
                    for channel in body["channels"]:
                        self.channels[channel["topic"]] = channel
        return self.channels[topic]

    async def subscribe(self, subscription_id: int, topic: str) -> None:
        channel = await self.wait_for_channel(topic)
        await self.ws.send(
            json.dumps({"op": "subscribe", "subscriptions": [{"id": subscription_id, "channelId": channel["id"]}]})
        )

    async def next_message(self, timeout: float = 3.0) -> tuple[int, int, bytes]:
        """(subscription id, log time ns, payload) of the next message-data frame."""
        deadline = time.monotonic() + timeout
        while True:
            message = await asyncio.wait_for(self.ws.recv(), max(0.01, deadline - time.monotonic()))
            if isinstance(message, bytes) and message[0] == 1:
                subscription, log_time = struct.unpack_from("<IQ", message, 1)
                return subscription, log_time, message[13:]


def test_subscriber_gets_frames_boxes_and_state() -> None:
    image = np.tile(np.arange(640, dtype=np.uint8)[None, :] // 3, (480, 1))
    ok, jpeg = cv2.imencode(".jpg", image)
    jpeg_bytes = jpeg.tobytes()
    taken = time.time()

    async def scenario(view: LiveView) -> None:
        async with websockets.connect(f"ws://127.0.0.1:{view.port}", subprotocols=["foxglove.sdk.v1"]) as ws:
            client = FoxgloveClient(ws)
            view.offer_frame(CAMERA, image, taken, [Box("person", 0.87, (10, 20, 110, 220))], encoded=jpeg_bytes)
            image_channel = await client.wait_for_channel(f"/camera/{CAMERA}/image")
            assert image_channel["schemaName"] == "foxglove.CompressedImage"
            boxes_channel = await client.wait_for_channel(f"/camera/{CAMERA}/detections")
            assert boxes_channel["schemaName"] == "foxglove.ImageAnnotations"
            await client.subscribe(1, f"/camera/{CAMERA}/image")
            await client.subscribe(2, f"/camera/{CAMERA}/detections")
            await client.subscribe(3, "/agent/state")
            await asyncio.sleep(0.3)  # subscriptions reach the server
            view.offer_state({"behavior": {"name": "sit"}, "cues_paused": False})
            view.offer_frame(CAMERA, image, taken, [Box("person", 0.87, (10, 20, 110, 220))], encoded=jpeg_bytes)
            got: dict[int, tuple[int, bytes]] = {}
            while len(got) < 3:
                subscription, log_time, payload = await client.next_message()
                got[subscription] = (log_time, payload)
            # the robot's own JPEG goes out as is (no re-encoding), stamped with capture time
            assert jpeg_bytes in got[1][1]
            assert abs(got[1][0] - int(taken * 1e9)) < 1000
            assert b"person 0.87" in got[2][1]
            assert json.loads(got[3][1]) == {"behavior": {"name": "sit"}, "cues_paused": False}

    with LiveView(host="127.0.0.1", port=0, max_hz=10) as view:
        asyncio.run(scenario(view))
        assert view.frames_sent >= 1


def test_depth_and_raw_frames_are_encoded_for_display() -> None:
    depth = np.full((240, 424), 1.5, dtype=np.float32)

    async def scenario(view: LiveView) -> None:
        async with websockets.connect(f"ws://127.0.0.1:{view.port}", subprotocols=["foxglove.sdk.v1"]) as ws:
            client = FoxgloveClient(ws)
            view.offer_frame("frontleft_depth", depth, time.time(), is_depth=True)
            await client.subscribe(1, "/camera/frontleft_depth/image")
            await asyncio.sleep(0.3)
            view.offer_frame("frontleft_depth", depth, time.time(), is_depth=True)
            _, _, payload = await client.next_message()
            start = payload.index(b"\xff\xd8")  # JPEG start-of-image inside the protobuf
            decoded = cv2.imdecode(np.frombuffer(payload[start:], np.uint8), cv2.IMREAD_COLOR)
            assert decoded is not None and decoded.shape == (240, 424, 3)

    with LiveView(port=0, max_hz=10) as view:
        asyncio.run(scenario(view))


def test_nothing_is_encoded_without_subscribers_and_rate_is_capped() -> None:
    image = np.zeros((480, 640), dtype=np.uint8)
    with LiveView(port=0, max_hz=5) as view:
        for _ in range(30):
            view.offer_frame(CAMERA, image, time.time())
            time.sleep(0.01)
        time.sleep(0.3)
        assert view.frames_sent == 0  # nobody watching: no JPEG encoding at all

        async def watch_for(seconds: float) -> None:
            async with websockets.connect(f"ws://127.0.0.1:{view.port}", subprotocols=["foxglove.sdk.v1"]) as ws:
                client = FoxgloveClient(ws)
                view.offer_frame(CAMERA, image, time.time())
                await client.subscribe(1, f"/camera/{CAMERA}/image")
                await asyncio.sleep(0.3)
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    view.offer_frame(CAMERA, image, time.time())  # offered at ~100 Hz
                    await asyncio.sleep(0.01)

        sent_before = view.frames_sent
        asyncio.run(watch_for(1.0))
        sent = view.frames_sent - sent_before
        assert 2 <= sent <= 8  # about max_hz per second, not the 100 Hz offered
        assert view.frames_skipped > 50
