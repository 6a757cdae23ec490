"""The cue engine: rules, cooldown, arbitration, operator control, stop, halt, caps, determinism."""

from __future__ import annotations

import math
from typing import Any

import pytest

from behaviors.commands import GoTo, MotionCommand, Sit, Stand, Stop, Velocity
from behaviors.config import RulesConfig
from behaviors.deadman import StopBudget
from behaviors.engine import CueEngine, EngineEvent, RobotPose
from behaviors.registry import REGISTRY, Behavior, BehaviorParams
from perception.detection import FrameResult, Sighting

FL = "frontleft_fisheye_image"
HOME = RobotPose(0.0, 0.0, 0.0)
FAST = {"seen_in": 1, "of_last": 1, "clear_after_misses": 1, "timeout_s": 1.0}


def config(
    rules: list[dict[str, Any]], cues: dict[str, Any] | None = None, **limits: Any
) -> RulesConfig:
    default_cues = {
        "person": {"label": "person", "persistence": FAST},
        "sign": {"label": "stop sign", "persistence": FAST},
        "tag1": {"label": "tag:1", "persistence": FAST},
    }
    return RulesConfig.model_validate(
        {"cues": cues or default_cues, "rules": rules, "limits": limits}
    )


def rule(name: str, cue: str, behavior: str, priority: int, **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "cue": cue,
        "behavior": behavior,
        "priority": priority,
        "cooldown_s": 0,
        **kw,
    }


def sighting(label: str, t: float, **kw: Any) -> Sighting:
    args = dict(
        label=label,
        score=0.9,
        camera=FL,
        box=(100.0, 100.0, 200.0, 300.0),
        image_size=(640, 480),
        time_local=t,
        position_odom=(2.0, 0.0, 0.0),
        distance_m=2.0,
        bearing_rad=0.0,
    )
    if label.startswith("tag:"):
        args["yaw_odom"] = math.pi
    args.update(kw)
    return Sighting(**args)  # type: ignore[arg-type]


def see(engine: CueEngine, t: float, *labels: str) -> None:
    engine.observe(FrameResult(FL, 0, t, t, [sighting(label, t) for label in labels]))


def kinds(events: list[EngineEvent], kind: str) -> list[dict[str, Any]]:
    return [e.data for e in events if e.kind == kind]


def test_rising_edge_fires_once_while_present() -> None:
    engine = CueEngine(config([rule("sit_on_sign", "sign", "sit", 50)]))
    see(engine, 0.0, "stop sign")
    assert engine.tick(0.05, HOME).commands == [Sit()]
    for i in range(1, 20):  # still present: no new edge, no new command
        see(engine, i * 0.1, "stop sign")
        assert engine.tick(i * 0.1 + 0.05, HOME).commands == []
    events = engine.drain_events()
    assert len(kinds(events, "rule_fired")) == 1
    assert kinds(events, "cue_fired")[0]["cue"] == "sign"


def test_cooldown_drops_edges_then_allows_again() -> None:
    engine = CueEngine(config([rule("sit_on_sign", "sign", "sit", 50, cooldown_s=5.0)]))
    see(engine, 0.0, "stop sign")
    assert engine.tick(0.0, HOME).commands == [Sit()]
    see(engine, 0.5)  # clears (1 miss)
    see(engine, 1.0, "stop sign")  # rises again inside the cooldown
    assert engine.tick(1.0, HOME).commands == []
    ignored = kinds(engine.drain_events(), "rule_ignored")
    assert ignored and ignored[0]["reason"].startswith("cooldown")
    see(engine, 5.5)
    see(engine, 6.0, "stop sign")  # after the cooldown
    assert engine.tick(6.0, HOME).commands == [Sit()]


def test_higher_priority_preempts_lower_is_ignored() -> None:
    engine = CueEngine(
        config(
            [
                rule("hold_person", "person", "hold", 90),
                rule("goto_tag", "tag1", "go_to_fiducial", 50),
                rule("sit_sign", "sign", "sit", 40),
            ]
        )
    )
    see(engine, 0.0, "tag:1")
    cmds = engine.tick(0.0, HOME).commands
    assert engine.active == "go_to_fiducial" and isinstance(cmds[0], GoTo)
    see(engine, 0.1, "tag:1", "stop sign")  # lower priority: ignored
    engine.tick(0.1, HOME)
    assert engine.active == "go_to_fiducial"
    see(engine, 0.2, "tag:1", "stop sign", "person")  # higher: pre-empts, walking stops first
    cmds = engine.tick(0.2, HOME).commands
    assert engine.active == "hold"
    assert cmds == [Stop(), Stop()]  # pre-emption stop (go-to in flight), then hold's own
    events = engine.drain_events()
    assert [d["rule"] for d in kinds(events, "rule_ignored")] == ["sit_sign"]
    pre = kinds(events, "behavior_preempted")
    assert pre[0]["name"] == "go_to_fiducial" and pre[0]["by"] == "hold_person"


def test_equal_priority_is_ignored_and_highest_of_simultaneous_edges_wins() -> None:
    engine = CueEngine(
        config(
            [
                rule("sit_sign", "sign", "hold", 40),
                rule("hold_person", "person", "hold", 90),
                rule("stand_tag", "tag1", "hold", 90),
            ]
        )
    )
    see(engine, 0.0, "stop sign", "person", "tag:1")
    engine.tick(0.0, HOME)
    assert (
        engine.active_info is not None and engine.active_info["rule"] == "hold_person"
    )  # file order breaks the tie
    ignored = {d["rule"] for d in kinds(engine.drain_events(), "rule_ignored")}
    assert ignored == {"sit_sign", "stand_tag"}


def test_operator_launch_preempts_cue_behaviors_and_blocks_rules_until_finished() -> None:
    engine = CueEngine(
        config([rule("hold_person", "person", "hold", 90), rule("sit_sign", "sign", "sit", 95)])
    )
    see(engine, 0.0, "person")
    engine.tick(0.0, HOME)
    assert engine.active == "hold"
    engine.launch("hold", {"duration_s": 1.0}, now=0.05)
    assert engine.active_info is not None and engine.active_info["source"] == "operator"
    see(engine, 0.1, "person", "stop sign")  # even priority 95 does not pre-empt an operator launch
    engine.tick(0.1, HOME)
    assert engine.active_info["source"] == "operator"
    engine.tick(1.2, HOME)  # the operator hold ends
    assert engine.active is None
    events = engine.drain_events()
    assert kinds(events, "behavior_preempted")[0]["rule"] == "hold_person"
    assert "operator" in kinds(events, "rule_ignored")[0]["reason"]


def test_safety_rule_preempts_operator_launch() -> None:
    engine = CueEngine(
        config([rule("hold_person", "person", "hold", 90, safety=True, while_cue_present=True)])
    )
    engine.launch("follow", {}, now=0.0)
    see(engine, 0.1, "person")
    engine.tick(0.1, HOME)
    assert engine.active_info is not None and engine.active_info["rule"] == "hold_person"


def test_operator_launch_replaces_operator_launch() -> None:
    engine = CueEngine(config([]))
    engine.launch("hold", {}, now=0.0)
    engine.launch("stand", {}, now=0.1)
    assert engine.active == "stand"
    assert engine.tick(0.2, HOME).commands == [Stand()]


def test_cue_source_launch_is_arbitrated_like_a_rule() -> None:
    engine = CueEngine(config([rule("hold_person", "person", "hold", 90)]))
    see(engine, 0.0, "person")
    engine.tick(0.0, HOME)
    engine.launch("sit", {}, now=0.1, source="cue", priority=50)
    assert engine.active == "hold"
    assert kinds(engine.drain_events(), "launch_ignored")


def test_stop_always_wins() -> None:
    engine = CueEngine(config([rule("goto_tag", "tag1", "go_to_fiducial", 50)]))
    see(engine, 0.0, "tag:1")
    engine.tick(0.0, HOME)
    engine.launch("follow", {}, now=0.05)
    assert engine.stop(0.1, "operator pressed stop") == [Stop()]
    assert engine.active is None
    see(engine, 0.2, "tag:1")  # still present: no fresh edge, nothing restarts
    assert engine.tick(0.2, HOME).commands == []
    events = engine.drain_events()
    assert kinds(events, "behavior_cancelled")[0]["name"] == "follow"
    assert kinds(events, "stop")[0]["reason"] == "operator pressed stop"


def test_stop_between_edge_and_tick_discards_the_edge() -> None:
    engine = CueEngine(config([rule("sit_sign", "sign", "sit", 50)]))
    see(engine, 0.0, "stop sign")
    engine.stop(0.01, "stop")
    assert engine.tick(0.05, HOME).commands == []


def test_halt_cancels_and_nothing_resumes_until_a_fresh_edge() -> None:
    engine = CueEngine(config([rule("follow_person", "person", "follow", 50)]))
    t = 0.0
    see(engine, t, "person")
    assert isinstance(engine.tick(t, HOME).commands[0], Velocity)
    engine.halt("connection lost")
    assert engine.active is None
    for i in range(1, 10):  # the person stays in view: no resume
        t = i * 0.1
        see(engine, t, "person")
        assert engine.tick(t, HOME).commands == []
    see(engine, 1.0)  # the cue clears ...
    engine.tick(1.0, HOME)
    see(engine, 1.1, "person")  # ... and fires again
    assert isinstance(engine.tick(1.1, HOME).commands[0], Velocity)
    events = engine.drain_events()
    assert kinds(events, "behavior_cancelled")[0]["by"] == "halt"
    assert kinds(events, "halt")[0]["reason"] == "connection lost"


def test_halt_sends_nothing_and_forgets_queued_commands() -> None:
    engine = CueEngine(config([]))
    engine.launch("stand", {}, now=0.0)
    engine.halt("lease lost")
    assert engine.tick(0.1, HOME).commands == []


def test_pause_and_resume_cues() -> None:
    engine = CueEngine(config([rule("sit_sign", "sign", "sit", 50)]))
    engine.pause_cues()
    assert engine.cues_paused
    see(engine, 0.0, "stop sign")
    assert engine.tick(0.0, HOME).commands == []
    assert kinds(engine.drain_events(), "rule_ignored")[0]["reason"] == "cues paused"
    engine.resume_cues()
    see(engine, 0.1, "stop sign")  # present since before the resume: no edge, no fire
    assert engine.tick(0.1, HOME).commands == []
    see(engine, 0.2)
    see(engine, 0.3, "stop sign")
    assert engine.tick(0.3, HOME).commands == [Sit()]


def test_pause_keeps_operator_launches_working() -> None:
    engine = CueEngine(config([]))
    engine.pause_cues()
    engine.launch("sit", {}, now=0.0)
    assert engine.tick(0.1, HOME).commands == [Sit()]


def test_while_cue_present_ends_the_behavior_when_the_cue_clears() -> None:
    engine = CueEngine(config([rule("hold_person", "person", "hold", 90, while_cue_present=True)]))
    see(engine, 0.0, "person")
    assert engine.tick(0.0, HOME).commands == [Stop()]
    see(engine, 0.1, "person")
    engine.tick(0.1, HOME)
    assert engine.active == "hold"
    see(engine, 0.2)
    engine.tick(0.2, HOME)
    assert engine.active is None
    done = kinds(engine.drain_events(), "behavior_finished")
    assert done[0]["outcome"] == "succeeded" and "cleared" in done[0]["detail"]


def test_sequence_stop_then_sit_in_one_tick() -> None:
    steps = {"steps": [{"behavior": "stop"}, {"behavior": "sit"}]}
    engine = CueEngine(config([rule("sign", "sign", "sequence", 80, params=steps)]))
    see(engine, 0.0, "stop sign")
    assert engine.tick(0.0, HOME).commands == [Stop(), Sit()]
    assert engine.active is None


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("dance", {}, "unknown behavior"),
        ("follow", {"distance_m": -1}, "distance_m"),
        ("follow", {"speed": 2}, "speed: Extra inputs are not permitted"),
        ("go_to_fiducial", {}, "tag_id is required"),
        ("turn_toward", {}, "label is required"),
        ("sequence", {"steps": [{"behavior": "go_to_fiducial"}]}, "tag_id is required"),
        ("sequence", {"steps": []}, "steps"),
    ],
)
def test_launch_rejects_bad_requests_clearly_and_changes_nothing(
    name: str, params: dict, message: str
) -> None:
    engine = CueEngine(config([]))
    engine.launch("hold", {}, now=0.0)
    with pytest.raises(ValueError, match=message):
        engine.launch(name, params, now=0.1)
    assert engine.active == "hold"


def test_launch_rejects_unknown_source() -> None:
    with pytest.raises(ValueError, match="source"):
        CueEngine(config([])).launch("sit", {}, now=0.0, source="tablet")


def test_catalog_lists_every_behavior_with_typed_described_params() -> None:
    catalog = {b["name"]: b for b in CueEngine(config([])).behaviors_catalog()}
    assert set(catalog) == {
        "stand",
        "sit",
        "stop",
        "hold",
        "turn_toward",
        "follow",
        "go_to_fiducial",
        "sequence",
    }
    follow = {p["name"]: p for p in catalog["follow"]["params"]}
    assert follow["distance_m"]["default"] == 1.5 and follow["distance_m"]["type"] == "number"
    assert all(p["description"] for b in catalog.values() for p in b["params"])
    assert catalog["sequence"]["params"][0]["required"] is True


def test_caps_clip_speed_and_deadlines_and_refuse_far_goals() -> None:
    engine = CueEngine(
        config([rule("goto_tag", "tag1", "go_to_fiducial", 50)], max_goal_distance_m=3.0)
    )
    far = sighting("tag:1", 0.0, position_odom=(6.0, 0.0, 0.0), distance_m=6.0)
    engine.observe(FrameResult(FL, 0, 0.0, 0.0, [far]))
    assert engine.tick(0.0, HOME).commands == []
    events = engine.drain_events()
    assert kinds(events, "goal_refused")[0]["distance_m"] == pytest.approx(5.0)
    assert kinds(events, "behavior_finished")[0]["outcome"] == "failed"


def test_goal_clamped_when_configured() -> None:
    engine = CueEngine(
        config(
            [rule("goto_tag", "tag1", "go_to_fiducial", 50)],
            max_goal_distance_m=3.0,
            goal_beyond_limit="clamp",
        )
    )
    far = sighting("tag:1", 0.0, position_odom=(6.0, 0.0, 0.0), distance_m=6.0)
    engine.observe(FrameResult(FL, 0, 0.0, 0.0, [far]))
    (cmd,) = engine.tick(0.0, HOME).commands
    assert isinstance(cmd, GoTo) and math.hypot(cmd.x, cmd.y) == pytest.approx(3.0)
    assert cmd.yaw == pytest.approx(0.0)  # faces the tag
    assert kinds(engine.drain_events(), "goal_clamped")


def test_follow_velocity_respects_speed_caps() -> None:
    engine = CueEngine(
        config(
            [rule("follow_person", "person", "follow", 50)], max_speed_mps=0.3, max_yaw_rate_rps=0.2
        )
    )
    person = sighting(
        "person", 0.0, position_odom=(8.0, 8.0, 0.0), distance_m=11.3, bearing_rad=math.pi / 4
    )
    engine.observe(FrameResult(FL, 0, 0.0, 0.0, [person]))
    (cmd,) = engine.tick(0.0, HOME).commands
    assert isinstance(cmd, Velocity)
    assert math.hypot(cmd.vx, cmd.vy) <= 0.3 + 1e-9 and abs(cmd.vyaw) <= 0.2 + 1e-9
    assert cmd.duration_s == pytest.approx(StopBudget().deadline_s(math.hypot(cmd.vx, cmd.vy), cmd.vyaw))


def test_events_are_stamped_with_input_times() -> None:
    engine = CueEngine(config([rule("sit_sign", "sign", "sit", 50)]))
    see(engine, 3.0, "stop sign")
    engine.tick(3.2, HOME)
    events = engine.drain_events()
    assert [(e.kind, e.time) for e in events] == [
        ("cue_fired", 3.0),
        ("rule_fired", 3.2),
        ("behavior_started", 3.2),
        ("behavior_finished", 3.2),
        ("command", 3.2),
    ]
    assert engine.drain_events() == []


def _script(engine: CueEngine) -> tuple[list[MotionCommand], list[EngineEvent]]:
    cmds: list[MotionCommand] = []
    for i in range(40):
        t = i * 0.1
        labels = ["person"] if i % 7 else []
        if 10 <= i < 20:
            labels.append("tag:1")
        see(engine, t, *labels)
        cmds += engine.tick(t + 0.05, RobotPose(0.01 * i, 0.0, 0.0)).commands
        if i == 25:
            engine.launch("sit", {}, now=t)
        if i == 30:
            cmds += engine.stop(t, "test")
    return cmds, engine.drain_events()


def test_same_inputs_give_the_same_commands_and_events() -> None:
    rules = [
        rule("follow_person", "person", "follow", 50),
        rule("goto_tag", "tag1", "go_to_fiducial", 60),
    ]
    first = _script(CueEngine(config(rules)))
    second = _script(CueEngine(config(rules)))
    assert first == second
    assert len(first[0]) > 10


class _RunawayParams(BehaviorParams):
    pass


class _Runaway(Behavior):
    """A misbehaving behavior: asks for too much, to check the engine's last guard."""

    name = "test_runaway"
    summary = "test only"
    Params = _RunawayParams

    def step(self, now: float, pose: RobotPose) -> list[MotionCommand]:
        return [
            Velocity(vx=3.0, vy=4.0, vyaw=-9.0, duration_s=30.0),
            GoTo(x=2.0, y=0.0, yaw=0.0, frame="odom", duration_s=30.0, max_linear_mps=9.0),
            GoTo(x=50.0, y=0.0, yaw=0.0, frame="odom", duration_s=1.0),
        ]


@pytest.fixture
def runaway() -> Any:
    REGISTRY[_Runaway.name] = _Runaway
    yield
    del REGISTRY[_Runaway.name]


def test_engine_clips_every_command_to_the_limits_whatever_the_behavior_asks(runaway: Any) -> None:
    stop = StopBudget(stop_within_s=1.0, linear_decel_mps2=2.0, angular_decel_rps2=3.5, reaction_s=0.1)
    engine = CueEngine(
        config([], max_speed_mps=0.5, max_yaw_rate_rps=0.7, max_goal_distance_m=5.0), stop=stop
    )
    engine.launch("test_runaway", {}, now=0.0)
    vel, goto, far = engine.tick(0.1, HOME).commands
    assert isinstance(vel, Velocity)
    assert math.hypot(vel.vx, vel.vy) == pytest.approx(0.5) and vel.vx / vel.vy == pytest.approx(
        0.75
    )
    # Deadlines: the promise minus the reaction and the braking from the capped speeds
    # (0.5 m/s at 2 m/s^2 = 0.25 s; 0.7 rad/s at 3.5 rad/s^2 = 0.2 s), whatever was asked.
    assert vel.vyaw == -0.7 and vel.duration_s == pytest.approx(1.0 - 0.1 - 0.25)
    assert isinstance(goto, GoTo) and goto.duration_s == pytest.approx(0.65)
    assert goto.max_linear_mps == 0.5 and goto.max_angular_rps == 0.7
    assert far == Stop()  # 50 m goal refused outright
    events = engine.drain_events()
    assert len(kinds(events, "command_capped")) == 2 and len(kinds(events, "command_refused")) == 1


def test_failed_step_ends_the_sequence_without_the_next_steps() -> None:
    steps = {
        "steps": [{"behavior": "go_to_fiducial", "params": {"tag_id": 4}}, {"behavior": "sit"}]
    }
    engine = CueEngine(config([]))
    engine.launch("sequence", steps, now=0.0)  # tag 4 was never seen
    assert engine.tick(0.1, HOME).commands == []
    assert engine.active is None
    finished = kinds(engine.drain_events(), "behavior_finished")[0]
    assert (
        finished["outcome"] == "failed"
        and "step 0 (go_to_fiducial) failed: tag:4 not seen" in finished["detail"]
    )


def test_operator_preempting_a_moving_behavior_stops_it_first() -> None:
    engine = CueEngine(config([rule("follow_person", "person", "follow", 50)]))
    see(engine, 0.0, "person")
    assert isinstance(engine.tick(0.0, HOME).commands[0], Velocity)
    engine.launch("sit", {}, now=0.05)
    assert engine.tick(0.1, HOME).commands == [Stop(), Sit()]
