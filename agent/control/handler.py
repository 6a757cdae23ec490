"""The `AgentControl` seam: what the control server asks of the running agent.

The server validates requests and turns exceptions into error replies; the agent (the pipeline
in a live run, a stateful fake in tests) implements these methods. Results are plain JSON data.
Raise `ControlError` to choose the error code; a `ValueError` becomes `rejected` (e.g. an
unknown behavior or a bad parameter: the engine's message goes to the operator verbatim), a
`LookupError` becomes `not_found`, `RobotUnavailable` becomes `unavailable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class ControlError(Exception):
    """A request the agent cannot carry out, with the protocol error code to reply with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Snapshot:
    """A camera's latest frame as JPEG, with what was drawn on it."""

    jpeg: bytes
    camera: str
    width: int
    height: int
    time: float  # acquisition time, local clock (seconds since the epoch)
    detections: list[dict[str, Any]] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {
            "camera": self.camera,
            "width": self.width,
            "height": self.height,
            "time": self.time,
            "format": "jpeg",
            "bytes": len(self.jpeg),
            "detections": self.detections,
        }


@runtime_checkable
class AgentControl(Protocol):
    async def status(self) -> dict[str, Any]:
        """Active behavior, cues paused or not, robot state (connection, power, E-Stop, lease),
        per-camera rates and frame ages."""
        ...

    async def behaviors(self) -> list[dict[str, Any]]:
        """The behaviors an operator can launch, each with its parameters."""
        ...

    async def launch(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Start behavior `name` as an operator behavior (pre-empts cue behaviors)."""
        ...

    async def stop(self, reason: str) -> dict[str, Any]:
        """Stop motion now and end any behavior. Always wins."""
        ...

    async def pause_cues(self) -> dict[str, Any]: ...

    async def resume_cues(self) -> dict[str, Any]: ...

    async def snapshot(self, camera: str, draw_detections: bool) -> Snapshot:
        """The latest frame of `camera` as JPEG; `LookupError` for an unknown camera or when
        no frame has arrived yet."""
        ...
