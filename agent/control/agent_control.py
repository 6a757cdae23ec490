"""Operator control on the running agent: `AgentControl` over the pipeline and the cue engine,
and the event stream fed from what the pipeline sees and does.

`ControlHost` is what `run_agent` uses: it checks the settings (and loads the CurveZMQ keys)
before the robot is touched and, once the pipeline exists, observes it (frames and results,
robot status, commands, events), serves requests, publishes events and health, and feeds the
live view.

All arbitration stays in the cue engine, and every operator request goes through the pipeline
(its lock, its clock, recorded as `operator_input`): `launch` is `Pipeline.launch`, which
pre-empts cue behaviors until the behavior finishes or is stopped, and `stop` is the engine's
stop sent to the robot at once (`Pipeline.stop_now`), not at the next tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.control.config import ControlConfig
from agent.control.drawing import detection_summary, draw_detections, encode_jpeg, to_bgr
from agent.control.handler import ControlError, Snapshot
from agent.control.keys import ServerKeys, load_server_keys
from agent.control.protocol import ErrorCode
from agent.core.events import AgentEvent
from agent.core.observers import PipelineObserver
from agent.core.seams import RobotStatus
from agent.recording import format as fmt
from behaviors.commands import MotionCommand, command_to_dict
from perception.detection import FrameResult, Sighting
from perception.frame import Frame

log = logging.getLogger(__name__)

Publish = Callable[[str, dict[str, Any], "float | None"], None]

# Which event-stream topic each agent / engine event kind goes to. Kinds not listed are not
# published: engine "command" / "command_capped" events are the engine's intentions; what was
# actually sent to the robot (or refused, or failed) comes from the pipeline's `command`
# observer call.
TOPIC_OF_KIND: dict[str, str] = {
    "cue_fired": "cue",
    "cue_cleared": "cue",
    "rule_fired": "cue",
    "rule_ignored": "cue",
    "rule_failed": "cue",
    "cues_paused": "cue",
    "cues_resumed": "cue",
    "behavior_started": "behavior",
    "behavior_finished": "behavior",
    "behavior_preempted": "behavior",
    "behavior_cancelled": "behavior",
    "launch_ignored": "behavior",
    "sequence_step": "behavior",
    "goal_refused": "behavior",
    "goal_clamped": "behavior",
    "watchdog_tripped": "health",
    "watchdog_recovered": "health",
    "robot_unavailable": "health",
    "robot_available": "health",
    "connection_lost": "health",
    "reconnected": "health",
    "lease_lost": "health",
    "pipeline_started": "health",
    "pipeline_finished": "health",
}
_BEHAVIOR_STATE = {
    "behavior_started": "started",
    "behavior_finished": "finished",
    "behavior_preempted": "preempted",
    "behavior_cancelled": "stopped",
    "launch_ignored": "ignored",
}


def event_for_stream(event: AgentEvent) -> tuple[str, dict[str, Any]] | None:
    """(topic, data) of an agent event on the operator event stream, or None to skip it."""
    topic = TOPIC_OF_KIND.get(event.kind)
    if topic is None:
        return None
    data: dict[str, Any] = {"event": event.kind, **event.data}
    if event.message and event.message != event.kind.replace("_", " "):
        data.setdefault("message", event.message)
    if topic == "behavior":
        data.setdefault("state", _BEHAVIOR_STATE.get(event.kind, event.kind))
        if event.kind == "behavior_finished":
            outcome = data.get("outcome")
            data["state"] = "failed" if outcome == "failed" else "finished"
            data.setdefault("reason", data.get("detail") or None)
        elif event.kind == "behavior_preempted":
            data.setdefault("reason", f"pre-empted by {data.get('by')}")
    return topic, data


def command_for_stream(command: MotionCommand, outcome: str) -> dict[str, Any]:
    """The `command` event for a command the pipeline sent ("sent"), refused ("refused: why")
    or failed to send ("failed: why")."""
    state, _, why = outcome.partition(":")
    data: dict[str, Any] = {"command": command_to_dict(command), "ok": state == "sent"}
    if state != "sent":
        data["error"] = f"{state}: {why.strip()}" if why.strip() else state
    return data


@dataclass
class _CameraState:
    frame: Frame | None = None
    result: FrameResult | None = None
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=64))

    def rate_hz(self, now: float, window_s: float = 5.0) -> float | None:
        recent = [t for t in self.arrivals if now - t <= window_s]
        if len(recent) < 2:
            return None
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


def _scaled_box(s: Sighting, width: int, height: int) -> tuple[float, float, float, float]:
    """A sighting's box in the pixels of the image we have (it may be decoded smaller)."""
    ow, oh = s.image_size
    if not ow or not oh or (ow, oh) == (width, height):
        return s.box
    sx, sy = width / ow, height / oh
    x1, y1, x2, y2 = s.box
    return x1 * sx, y1 * sy, x2 * sx, y2 * sy


@dataclass(frozen=True)
class _Drawn:
    label: str
    score: float
    box: tuple[float, float, float, float]


class LiveAgentControl(PipelineObserver):
    """`AgentControl` for a running `Pipeline`, fed as a pipeline observer."""

    def __init__(self, pipeline: Any, publish: Publish, live_view: Any = None) -> None:
        self.pipeline = pipeline
        self.engine = pipeline.engine  # read-only views (active behavior, cues); changes go
        self._publish = publish  # through the pipeline
        self.live_view = live_view
        self.started = time.time()
        self.cameras: dict[str, _CameraState] = {
            name: _CameraState() for name in getattr(pipeline.source, "cameras", [])
        }
        self.last_status: RobotStatus | None = None
        self.last_status_error: str | None = None

    # --- PipelineObserver (event loop thread; quick, never raises) -------------------------

    def robot_status(self, now: float, status: RobotStatus | None, error: BaseException | None) -> None:
        if status is not None:
            self.last_status, self.last_status_error = status, None
        elif error is not None:
            self.last_status_error = str(error) or type(error).__name__

    def command(self, now: float, command: MotionCommand, outcome: str) -> None:
        self._publish("command", command_for_stream(command, outcome), now)
        if self.live_view is not None:
            record = fmt.command_record(now, command_to_dict(command), outcome)
            self.live_view.offer_record(fmt.TOPIC_COMMANDS, now, record)

    def event(self, event: AgentEvent) -> None:
        mapped = event_for_stream(event)
        if mapped is not None:
            self._publish(mapped[0], mapped[1], event.time)
        if self.live_view is not None:
            record = fmt.event_record(event.kind, event.time, fmt.agent_event_data(event))
            self.live_view.offer_record(fmt.TOPIC_EVENTS, event.time, record)

    def on_result(self, frame: Frame, result: FrameResult) -> None:
        """A result the engine observed, with its frame (`Pipeline.result_listeners`)."""
        state = self.cameras.setdefault(frame.camera, _CameraState())
        state.frame, state.result = frame, result
        state.arrivals.append(time.time())
        if result.sightings:
            self._publish(
                "detection",
                {
                    "camera": frame.camera,
                    "seq": frame.seq,
                    "time": frame.acquisition_time_local,
                    "detections": [detection_summary(s) for s in result.sightings],
                },
                frame.acquisition_time_local,
            )
        if self.live_view is not None:
            self.live_view.offer_frame(frame, result)

    async def health_loop(self, interval_s: float) -> None:
        while True:
            try:
                health = self._health()
                self._publish("health", health, None)
                if self.live_view is not None:
                    self.live_view.offer_state(health)
            except Exception:  # health reporting must never take the agent down
                log.exception("health report failed")
            await asyncio.sleep(interval_s)

    # --- AgentControl ---------------------------------------------------------------------

    def _camera_health(self, now: float) -> dict[str, dict[str, Any]]:
        source_stats: dict[str, Any] = {}
        try:
            source_stats = self.pipeline.source.stats() or {}
        except Exception:  # camera rates are nice to have, never worth failing a request
            log.debug("source stats unavailable", exc_info=True)
        out = {}
        for name, state in sorted(self.cameras.items()):
            camera_fps = (source_stats.get(name) or {}).get("camera_fps")
            detect_hz = state.rate_hz(now)
            age = None if state.frame is None else now - state.frame.acquisition_time_local
            out[name] = {
                "rate_hz": round(camera_fps, 2) if camera_fps else (round(detect_hz, 2) if detect_hz else None),
                "detect_hz": round(detect_hz, 2) if detect_hz else None,
                "frame_age_s": None if age is None else round(age, 3),
            }
        return out

    def _robot(self) -> dict[str, Any] | None:
        if self.last_status is None:
            return None
        robot = asdict(self.last_status)
        if self.last_status_error is not None:  # the latest poll failed: say so
            robot["connected"] = False
            robot["detail"] = self.last_status_error
        return robot

    def _health(self) -> dict[str, Any]:
        now = time.time()
        stats = self.pipeline.stats
        return {
            "cameras": self._camera_health(now),
            "robot": self._robot(),
            "behavior": self.engine.active_info,
            "cues_paused": self.engine.cues_paused,
            "detected": stats.detected,
            "dropped_stale": stats.dropped_stale,
            "commands_sent": stats.commands_sent,
            "watchdog_trips": stats.watchdog_trips,
        }

    async def status(self) -> dict[str, Any]:
        now = time.time()
        return {
            "time": now,
            "uptime_s": round(now - self.started, 1),
            "behavior": self.engine.active_info,
            "cues_paused": self.engine.cues_paused,
            "cues": self.engine.cue_states(),
            "robot": self._robot(),
            "cameras": self._camera_health(now),
            "stats": self.pipeline.stats.as_dict(now),
        }

    async def behaviors(self) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in entry.items() if k != "schema"}  # the JSON schema is for programs
            for entry in self.engine.behaviors_catalog()
        ]

    def _why_robot_cannot_move(self) -> str | None:
        status = self.last_status
        if status is None:
            return None
        if self.last_status_error is not None or not status.connected:
            return "the robot is not connected"
        if status.estopped:
            return "the E-Stop is engaged"
        if not status.has_lease:
            return "the agent does not hold the lease"
        if not status.powered:
            return "the motors are off"
        return None

    async def launch(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        await self.pipeline.launch(name, params)  # ValueError -> rejected; first commands now
        result: dict[str, Any] = {"name": name, "behavior": self.engine.active_info}
        problem = self._why_robot_cannot_move()
        if problem is not None:
            result["message"] = f"Launched, but {problem}: it will not move until that is fixed."
        return result

    async def stop(self, reason: str) -> dict[str, Any]:
        ended = self.engine.active
        sent = await self.pipeline.stop_now(reason)
        result: dict[str, Any] = {"ended": ended, "sent": [command_to_dict(c) for c in sent]}
        if not sent:
            problem = self._why_robot_cannot_move() or "the robot did not take it"
            result["message"] = f"Behaviors stopped, but no stop command reached the robot: {problem}."
        return result

    async def pause_cues(self) -> dict[str, Any]:
        await self.pipeline.pause_cues()
        return {"cues_paused": True}

    async def resume_cues(self) -> dict[str, Any]:
        await self.pipeline.resume_cues()
        return {"cues_paused": False}

    async def snapshot(self, camera: str, draw_detections_: bool) -> Snapshot:
        state = self.cameras.get(camera)
        if state is None:
            raise LookupError(f"no camera {camera!r}; cameras: {', '.join(sorted(self.cameras))}")
        frame, result = state.frame, state.result
        if frame is None or result is None:
            raise LookupError(f"no frame from {camera} yet")
        sightings = list(result.sightings) if draw_detections_ else []

        def render() -> Snapshot:
            image = to_bgr(frame.image, frame.is_depth)
            boxes = [_Drawn(s.label, s.score, _scaled_box(s, frame.width, frame.height)) for s in sightings]
            if boxes:
                image = draw_detections(image, boxes)
            return Snapshot(
                jpeg=encode_jpeg(image),
                camera=camera,
                width=int(image.shape[1]),
                height=int(image.shape[0]),
                time=frame.acquisition_time_local,
                detections=[detection_summary(b) for b in boxes],
            )

        return await asyncio.to_thread(render)  # encoding stays off the event loop


class _Starting:
    """The handler while the agent connects to the robot: `hello` works, the rest says why not."""

    async def _not_yet(self, *args: Any) -> Any:
        raise ControlError(
            ErrorCode.UNAVAILABLE, "the agent is starting (connecting to the robot); try again shortly"
        )

    status = behaviors = launch = stop = pause_cues = resume_cues = snapshot = _not_yet


class ControlHost:
    """Operator control and the live view for one agent run: settings and keys first, then
    sockets, then feeds. Either may run without the other (`control.enabled`,
    `control.live_view.enabled`).

    `bind()` opens the sockets (and the live view) before the robot is touched, so a port in
    use fails the run at once; `start(pipeline, engine)` attaches the running agent.
    """

    def __init__(self, config: ControlConfig) -> None:
        self.config = config
        self.keys: ServerKeys | None = (
            load_server_keys(config.curve_keys_dir)
            if config.enabled and config.curve_keys_dir is not None
            else None
        )  # KeyFileError now, before the robot is touched
        self.server: Any = None
        self.live_view: Any = None
        self.control: LiveAgentControl | None = None
        self._bound = False
        self._health_task: asyncio.Task[None] | None = None

    @staticmethod
    def wanted(config: ControlConfig) -> bool:
        """Whether a run with these settings serves anything (control or live view)."""
        return config.enabled or config.live_view.enabled

    def publish(self, topic: str, data: dict[str, Any], when: float | None = None) -> None:
        if self.server is not None:
            self.server.publish(topic, data, when)

    async def bind(self) -> None:
        """Serve the sockets (and the live view); raises `BindError` if they cannot be opened."""
        from agent.control.server import ControlServer

        if self._bound:
            return
        try:
            if self.config.live_view.enabled:
                from agent.control.live_view import LiveView

                lv = self.config.live_view
                self.live_view = LiveView(host=lv.host, port=lv.port, max_hz=lv.max_hz)
                self.live_view.start()
            if self.config.enabled:
                server = ControlServer(
                    _Starting(),
                    endpoint=self.config.endpoint,
                    events_endpoint=self.config.events_endpoint,
                    curve=self.keys,
                    handler_timeout_s=self.config.handler_timeout_s,
                )
                await server.start()
                self.server = server
        except BaseException:
            await self.close()
            raise
        self._bound = True

    async def start(self, pipeline: Any) -> None:
        """Attach the running agent: requests reach it, its events reach the stream and the
        live view."""
        await self.bind()
        self.control = LiveAgentControl(pipeline, self.publish, self.live_view)
        pipeline.observers.append(self.control)
        pipeline.result_listeners.append(self.control.on_result)
        if self.server is not None:
            self.server.handler = self.control
        self._health_task = asyncio.create_task(
            self.control.health_loop(self.config.health_interval_s), name="control-health"
        )

    async def close(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
            await asyncio.gather(self._health_task, return_exceptions=True)
            self._health_task = None
        if self.server is not None:
            await self.server.close()
            self.server = None
        if self.live_view is not None:
            self.live_view.close()
            self.live_view = None
        self._bound = False


__all__ = [
    "ControlHost",
    "LiveAgentControl",
    "command_for_stream",
    "event_for_stream",
]
