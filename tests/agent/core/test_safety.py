"""Safety building blocks: watchdog, command caps, backoff, latest-wins slots, virtual clock."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from agent.config import SafetyConfig
from agent.core.clock import FrameClock
from agent.core.safety import Backoff, PerceptionWatchdog, WatchdogChange
from agent.spot.latest import LatestSlots
from behaviors.commands import GoTo, Sit, Velocity
from behaviors.geometry import RobotPose
from behaviors.limits import Refused, cap_command


def test_watchdog_startup_grace_ends_with_the_first_result() -> None:
    dog = PerceptionWatchdog(1.0, start=0.0, startup_grace_s=3.0)
    assert dog.check(3.9) is None  # still connecting
    dog.feed(0.5)  # first result: from now on only capture times count
    assert dog.check(1.6) is WatchdogChange.TRIPPED


def test_watchdog_trips_once_and_recovers_once() -> None:
    dog = PerceptionWatchdog(1.0, start=0.0)
    assert dog.check(0.9) is None
    assert dog.check(1.01) is WatchdogChange.TRIPPED
    assert dog.check(3.0) is None  # reported once
    dog.feed(3.1)
    assert dog.check(3.2) is WatchdogChange.RECOVERED
    assert dog.check(3.3) is None


def test_guard_caps_speed_turn_and_deadline_and_refuses_far_goals() -> None:
    safety = SafetyConfig(max_speed_mps=0.5, max_yaw_rate_rps=0.4, max_goal_distance_m=3.0)
    limits, stop = safety.motion_limits(), safety.stop_budget()

    class _Guard:  # the pipeline's last word: the one cap function with the agent's caps
        def apply(self, command: Any, pose: RobotPose | None) -> Any:
            return cap_command(command, limits, pose, stop)

    guard = _Guard()
    v = guard.apply(Velocity(3.0, 4.0, -2.0, 30.0), None)
    assert isinstance(v, Velocity)
    assert math.isclose(math.hypot(v.vx, v.vy), 0.5) and math.isclose(v.vx / v.vy, 0.75)
    # Deadline: the stop promise (1 s) minus the reaction (0.1 s) and the braking from the capped
    # 0.5 m/s (0.25 s at 2 m/s^2).
    assert v.vyaw == -0.4 and v.duration_s == pytest.approx(0.65)
    pose = RobotPose(1.0, 1.0, 0.0)
    near = guard.apply(GoTo(3.0, 1.0, 0.0, "odom", 5.0, max_linear_mps=1.2), pose)
    assert isinstance(near, GoTo) and near.max_linear_mps == 0.5 and near.max_angular_rps == 0.4
    assert near.duration_s == pytest.approx(0.65)
    slow = guard.apply(Velocity(0.1, 0.0, 0.0, 30.0), None)
    assert isinstance(slow, Velocity) and slow.duration_s == pytest.approx(0.85)  # brakes sooner
    far = guard.apply(GoTo(5.0, 1.0, 0.0, "odom", 5.0), pose)
    assert isinstance(far, Refused) and "exceeds max_goal_distance_m" in far.reason
    assert guard.apply(Sit(), pose) == Sit()


def test_backoff_doubles_to_cap_and_resets() -> None:
    b = Backoff(0.5, 3.0)
    assert [b.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next() == 0.5


def test_latest_slots_keep_newest_count_skips_and_share_between_cameras() -> None:
    async def go() -> list[tuple[str, int]]:
        slots: LatestSlots[int] = LatestSlots(["a", "b"])
        for i in range(5):
            slots.put("a", i)
        slots.put("b", 100)
        slots.put("a", 5)
        out = [await slots.take(), await slots.take()]
        assert slots.stats["a"].skipped == 5 and slots.stats["b"].skipped == 0
        slots.close()
        assert await slots.take() is None
        return out  # type: ignore[return-value]

    # "a" waited longest (since its first untaken frame), so it goes first, with its newest.
    assert asyncio.run(go()) == [("a", 5), ("b", 100)]


def test_frame_clock_runs_each_due_sleeper_at_its_own_time() -> None:
    async def go() -> list[float]:
        clock = FrameClock(start=10.0)
        seen: list[float] = []

        async def ticker() -> None:
            t = 10.0
            while True:
                await clock.sleep_until(t)
                seen.append(clock.now())
                t += 0.1

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        await clock.advance_to(10.35)
        await clock.advance_to(10.5)
        task.cancel()
        return seen

    seen = asyncio.run(go())
    assert [round(t, 6) for t in seen] == [10.0, 10.1, 10.2, 10.3, 10.4, 10.5]
