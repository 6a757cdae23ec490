"""Test helpers for the control server: a stateful fake agent and a server on its own thread.

The fake keeps real state (active behavior, cues paused, commands "sent"), so tests check what
a request *did*, not only what it answered.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent.control.drawing import draw_detections, encode_jpeg, to_bgr
from agent.control.handler import Snapshot
from agent.control.server import ControlServer
from behaviors.commands import MotionCommand, Sit, Stand, Stop, Velocity


@dataclass(frozen=True)
class FakeDetection:
    label: str
    score: float
    box: tuple[float, float, float, float]


CATALOG = [
    {"name": "sit", "description": "Sit down.", "params": []},
    {"name": "stand", "description": "Stand up.", "params": []},
    {
        "name": "turn_toward",
        "description": "Turn to face a target.",
        "params": [
            {"name": "target", "type": "str", "required": True},
            {"name": "speed", "type": "float", "default": 0.5},
        ],
    },
    {"name": "slow", "description": "Takes its time (for timeout tests).", "params": []},
]


@dataclass
class FakeAgent:
    cameras: list[str] = field(default_factory=lambda: ["frontleft_fisheye_image"])
    active: dict[str, Any] | None = None
    cues_paused: bool = False
    sent: list[tuple[float, MotionCommand]] = field(default_factory=list)
    image: np.ndarray = field(
        default_factory=lambda: np.tile(np.arange(640, dtype=np.uint8)[None, :] // 3, (480, 1))
    )
    publish: Any = None  # set to ControlServer.publish to emit events like the real agent

    async def status(self) -> dict[str, Any]:
        return {
            "time": time.time(),
            "behavior": self.active,
            "cues_paused": self.cues_paused,
            "robot": {"connected": True, "powered": True, "estopped": False, "has_lease": True},
            "cameras": {c: {"rate_hz": 15.0, "frame_age_s": 0.05} for c in self.cameras},
        }

    async def behaviors(self) -> list[dict[str, Any]]:
        return CATALOG

    async def launch(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        if name == "slow":
            await asyncio.sleep(30)
        if name not in {b["name"] for b in CATALOG}:
            raise ValueError(f"unknown behavior {name!r}")
        if name == "turn_toward" and "target" not in params:
            raise ValueError("turn_toward needs target=LABEL")
        self.active = {"name": name, "source": "operator", "started": time.time(), "params": params}
        command: MotionCommand = {"sit": Sit(), "stand": Stand()}.get(name) or Velocity(0, 0, 0.5, 0.6)
        self.sent.append((time.perf_counter(), command))
        if self.publish:
            self.publish("behavior", {"name": name, "state": "started", "source": "operator"})
        return {"name": name}

    async def stop(self, reason: str) -> dict[str, Any]:
        ended = self.active["name"] if self.active else None
        self.active = None
        self.sent.append((time.perf_counter(), Stop()))
        if self.publish:
            self.publish("command", {"command": {"kind": "stop"}, "ok": True, "source": "operator"})
        return {"ended": ended}

    async def pause_cues(self) -> dict[str, Any]:
        self.cues_paused = True
        return {"cues_paused": True}

    async def resume_cues(self) -> dict[str, Any]:
        self.cues_paused = False
        return {"cues_paused": False}

    async def snapshot(self, camera: str, draw_detections_: bool) -> Snapshot:
        if camera not in self.cameras:
            raise LookupError(f"no camera {camera!r}; cameras: {', '.join(self.cameras)}")
        dets = [FakeDetection("person", 0.9, (100.0, 100.0, 200.0, 300.0))]
        image = to_bgr(self.image)
        if draw_detections_:
            image = draw_detections(image, dets)
        return Snapshot(
            jpeg=encode_jpeg(image),
            camera=camera,
            width=image.shape[1],
            height=image.shape[0],
            time=time.time(),
            detections=[{"label": d.label, "score": d.score, "box": list(d.box)} for d in dets],
        )


class ServerThread:
    """A `ControlServer` on its own event loop thread (as the agent runs it), for tests that
    talk to it from blocking clients or subprocesses."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        self.handler = handler
        self.kwargs = {"endpoint": "tcp://127.0.0.1:0", **kwargs}
        self.server: ControlServer | None = None
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self.server = ControlServer(self.handler, **self.kwargs)
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(5)
        return self

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        return self.server.endpoint

    def alive(self) -> bool:
        return self._thread.is_alive() and self.server is not None and self.server._serve_task is not None and not self.server._serve_task.done()

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()
