"""What the agent's events become on the operator event stream, and commands published at the
robot seam (sent or refused)."""

from __future__ import annotations

from agent.control.agent_control import command_for_stream, event_for_stream
from agent.control.op_view import format_event
from agent.control.protocol import EVENT_TOPICS, Event
from agent.core.events import AgentEvent
from behaviors.commands import GoTo, Sit, Stop, Velocity


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
    assert event_for_stream(AgentEvent(1.0, "command_refused", "refused goto: too far", {"command": "goto"})) is None


def test_every_mapped_topic_is_a_documented_topic() -> None:
    from agent.control.agent_control import TOPIC_OF_KIND

    assert set(TOPIC_OF_KIND.values()) <= set(EVENT_TOPICS)


def test_commands_sent_refused_and_failed() -> None:
    sent = command_for_stream(Velocity(0.1, 0.0, 0.2, 0.6), "sent")
    assert sent == {"command": {"vx": 0.1, "vy": 0.0, "vyaw": 0.2, "duration_s": 0.6, "kind": "velocity"}, "ok": True}
    assert "sent velocity vx=0.10 vy=0.00 vyaw=0.20 for 0.6 s" in format_event(Event("command", 1.0, 1, sent)).plain
    refused = command_for_stream(GoTo(9.0, 0.0, 0.0, "odom", 5.0), "refused: goal 9.0 m away, limit 5.0 m")
    assert refused["ok"] is False and refused["error"] == "refused: goal 9.0 m away, limit 5.0 m"
    line = format_event(Event("command", 1.0, 2, refused)).plain
    assert "REFUSED go to (9.00, 0.00, yaw 0.00) in odom: refused: goal 9.0 m away" in line
    failed = command_for_stream(Sit(), "failed: E-Stop engaged")
    assert failed["error"] == "failed: E-Stop engaged"
    assert Stop().kind == "stop"
