"""What the agent's events become on the operator event stream, and commands published at the
robot seam (sent or refused)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent.control.agent_control import CommandPublishingRobot, event_for_stream
from agent.control.op_cli import format_event
from agent.control.protocol import EVENT_TOPICS, Event
from agent.events import AgentEvent
from agent.robot import RobotStatus, RobotUnavailable
from behaviors.commands import Sit, Stop, Velocity


def test_engine_events_map_to_topics_with_readable_lines() -> None:
    started = AgentEvent(1.0, "behavior_started", "behavior started",
                         {"name": "turn_toward", "source": "operator", "params": {}}, source="engine")
    topic, data = event_for_stream(started)  # type: ignore[misc]
    assert topic == "behavior" and data["state"] == "started" and data["name"] == "turn_toward"
    line = format_event(Event(topic, 1.0, 1, data)).plain
    assert "turn_toward started (operator)" in line

    preempted = AgentEvent(2.0, "behavior_preempted", "", {"name": "follow", "source": "cue", "by": "operator:sit"})
    topic, data = event_for_stream(preempted)  # type: ignore[misc]
    assert data["state"] == "preempted" and "pre-empted by operator:sit" in format_event(Event(topic, 2.0, 2, data)).plain

    failed = AgentEvent(3.0, "behavior_finished", "", {"name": "go_to_fiducial", "source": "cue", "outcome": "failed", "detail": "tag lost"})
    topic, data = event_for_stream(failed)  # type: ignore[misc]
    assert data["state"] == "failed" and data["reason"] == "tag lost"

    rule = AgentEvent(4.0, "rule_fired", "", {"rule": "sit_for_person", "cue": "person_near", "behavior": "sit", "label": "person"})
    topic, data = event_for_stream(rule)  # type: ignore[misc]
    assert topic == "cue"
    assert "rule 'sit_for_person' fired -> sit (saw person)" in format_event(Event(topic, 4.0, 3, data)).plain


def test_agent_trouble_goes_to_health_and_intentions_are_not_published() -> None:
    trip = AgentEvent(1.0, "watchdog_tripped", "no fresh detection for 1.20 s", {"silence_s": 1.2})
    assert event_for_stream(trip) == ("health", {"event": "watchdog_tripped", "silence_s": 1.2, "message": "no fresh detection for 1.20 s"})
    assert event_for_stream(AgentEvent(1.0, "command", "", {"kind": "velocity"})) is None
    refused = AgentEvent(1.0, "command_refused", "refused goto: too far", {"command": "goto"})
    topic, data = event_for_stream(refused)  # type: ignore[misc]
    assert topic == "command" and data["ok"] is False and data["command"] == {"kind": "goto"}
    assert "REFUSED goto: too far" in format_event(Event(topic, 1.0, 1, data)).plain


def test_every_mapped_topic_is_a_documented_topic() -> None:
    from agent.control.agent_control import TOPIC_OF_KIND

    assert set(TOPIC_OF_KIND.values()) <= set(EVENT_TOPICS)


class _Robot:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[Any] = []

    async def send(self, command: Any) -> None:
        if self.fail:
            raise RobotUnavailable("E-Stop engaged")
        self.sent.append(command)

    async def status(self) -> RobotStatus:
        return RobotStatus(connected=True, powered=True, estopped=False, has_lease=True)

    def close(self) -> str:
        return "closed"


def test_commands_are_published_at_the_robot_seam() -> None:
    published: list[tuple[str, dict[str, Any]]] = []
    inner = _Robot()
    robot = CommandPublishingRobot(inner, lambda topic, data, when: published.append((topic, data)))
    asyncio.run(robot.send(Velocity(0.1, 0.0, 0.2, 0.6)))
    assert inner.sent == [Velocity(0.1, 0.0, 0.2, 0.6)]
    assert published == [("command", {"command": {"vx": 0.1, "vy": 0.0, "vyaw": 0.2, "duration_s": 0.6, "kind": "velocity"}, "ok": True})]
    assert robot.close() == "closed"  # the rest of the robot passes through
    assert asyncio.run(robot.status()).has_lease


def test_refused_command_is_published_then_raised() -> None:
    published: list[tuple[str, dict[str, Any]]] = []
    robot = CommandPublishingRobot(_Robot(fail=True), lambda topic, data, when: published.append((topic, data)))
    with pytest.raises(RobotUnavailable):
        asyncio.run(robot.send(Sit()))
    assert published[0][1]["ok"] is False and published[0][1]["error"] == "E-Stop engaged"
    line = format_event(Event("command", 1.0, 1, published[0][1])).plain
    assert "REFUSED sit: E-Stop engaged" in line
    assert Stop().kind == "stop"
