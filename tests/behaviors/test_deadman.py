"""The stop promise's deadline derivation (behaviors/deadman.py) and that everything uses it."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from agent.config import SafetyConfig
from behaviors.commands import GoTo, Sit, Velocity
from behaviors.deadman import StopBudget


def test_deadline_is_the_promise_minus_reaction_and_braking_at_the_commands_speed() -> None:
    budget = StopBudget(stop_within_s=1.0, linear_decel_mps2=2.0, angular_decel_rps2=3.0, reaction_s=0.1)
    assert budget.braking_s(0.5, 0.0) == pytest.approx(0.25)
    assert budget.braking_s(0.1, -1.5) == pytest.approx(0.5)  # turning takes longer to stop here
    assert budget.deadline_s(0.5, 0.3) == pytest.approx(0.65)
    assert budget.deadline_s(0.0, 0.0) == pytest.approx(0.9)
    # Deadline + braking + reaction is the promise, whatever the speed.
    for speed in (0.0, 0.3, 0.5, 1.0, 1.4):
        assert budget.deadline_s(speed, 0.0) + budget.braking_s(speed, 0.0) + 0.1 == pytest.approx(1.0)


def test_bound_shortens_but_never_lengthens_and_leaves_postures_alone() -> None:
    budget = StopBudget()
    fast = budget.bound(Velocity(vx=0.6, vy=0.8, vyaw=0.0, duration_s=5.0))
    assert isinstance(fast, Velocity) and fast.duration_s == pytest.approx(0.4)  # 1 m/s
    short = Velocity(vx=0.5, vy=0.0, vyaw=0.0, duration_s=0.2)
    assert budget.bound(short) == short
    goto = budget.bound(GoTo(1.0, 0.0, 0.0, "odom", 1.0, max_linear_mps=0.5, max_angular_rps=0.8))
    assert isinstance(goto, GoTo) and goto.duration_s == pytest.approx(1.0 - 0.1 - 0.8 / 3.0)
    assert budget.bound(Sit()) == Sit()
    with pytest.raises(ValueError, match="speed caps"):
        budget.bound(GoTo(1.0, 0.0, 0.0, "odom", 1.0))


def test_agent_refuses_speed_caps_that_cannot_keep_the_promise() -> None:
    assert SafetyConfig().stop_budget().deadline_s(1.0, 1.0) == pytest.approx(0.4)
    with pytest.raises(ValidationError, match="cannot keep the stop promise") as err:
        SafetyConfig(max_speed_mps=1.6)
    assert "needs 0.80 s to brake" in str(err.value)
    # A robot measured to brake harder may go faster.
    assert SafetyConfig(max_speed_mps=1.6, braking_decel_mps2=4.0).stop_budget().deadline_s(1.6, 1.0) > 0.2
    with pytest.raises(ValidationError, match="stop_within_s"):
        SafetyConfig(stop_within_s=1.5)  # the README's promise is the upper bound


def test_every_moving_behavior_derives_its_deadline_from_the_budget() -> None:
    from behaviors.config import RulesConfig
    from behaviors.engine import CueEngine
    from behaviors.geometry import RobotPose
    from perception.detection import FrameResult, Sighting

    budget = StopBudget(stop_within_s=0.9, linear_decel_mps2=1.0, angular_decel_rps2=2.0, reaction_s=0.05)
    engine = CueEngine(RulesConfig.model_validate({"cues": {}, "rules": []}), stop=budget)
    here = RobotPose(0.0, 0.0, 0.0)
    person = Sighting(label="person", score=0.9, camera="frontleft_fisheye_image", box=(0, 0, 1, 1),
                      image_size=(4, 4), time_local=0.0, distance_m=3.0, bearing_rad=0.4,
                      position_odom=(2.8, 1.2, 0.0))
    tag = Sighting(label="tag:1", score=1.0, camera="frontleft_fisheye_image", box=(0, 0, 1, 1),
                   image_size=(4, 4), time_local=0.0, distance_m=3.0, bearing_rad=0.0,
                   position_odom=(3.0, 0.0, 0.0), yaw_odom=math.pi)
    engine.observe(FrameResult("frontleft_fisheye_image", 0, 0.0, 0.0, [person, tag]))
    seen = []
    for name, params in (("follow", {}), ("turn_toward", {"label": "person"}),
                         ("go_to_fiducial", {"tag_id": 1})):
        engine.launch(name, params, now=0.1)
        for command in engine.tick(0.1, here).commands:
            if isinstance(command, Velocity):
                speed, turn = math.hypot(command.vx, command.vy), command.vyaw
            elif isinstance(command, GoTo):
                speed, turn = command.max_linear_mps or 0.0, command.max_angular_rps or 0.0
            else:
                continue
            seen.append(name)
            assert command.duration_s == pytest.approx(budget.deadline_s(speed, turn)), name
        engine.stop(0.2, "next")
    assert seen == ["follow", "turn_toward", "go_to_fiducial"]
