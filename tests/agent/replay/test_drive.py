"""The pieces that make replay deterministic: scripted time, detecting ahead, comparing runs."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np

from agent.core.seams import LeaseLost, RobotStatus
from agent.replay.compare import compare_commands
from agent.replay.detect_ahead import DetectAhead
from agent.replay.dry_run import ReplayRobot
from agent.replay.recorded import RecordedStatus
from agent.replay.timing import ScriptedClock
from behaviors.commands import GoTo, Sit, Stop
from perception.detection import FrameResult
from perception.frame import Frame


def test_scripted_clock_runs_a_sleeper_only_when_released_at_the_recorded_time() -> None:
    async def scenario() -> list[tuple[str, float]]:
        clock = ScriptedClock(start=10.0)
        seen: list[tuple[str, float]] = []

        async def control_loop() -> None:
            next_tick = clock.now()
            while True:
                await clock.sleep_until(next_tick)  # deadline already due: still parks
                seen.append(("tick", clock.now()))
                next_tick += 0.1

        task = asyncio.create_task(control_loop())
        await asyncio.sleep(0.05)
        assert seen == []  # nothing runs by itself, whatever the deadline
        assert await clock.release(10.013)  # the live tick ran 13 ms after its deadline
        clock.set(10.05)  # an observation between ticks moves time without running ticks
        seen.append(("observe", clock.now()))
        assert await clock.release(10.104)
        task.cancel()
        return seen

    assert asyncio.run(scenario()) == [("tick", 10.013), ("observe", 10.05), ("tick", 10.104)]


def test_release_gives_up_when_nobody_sleeps(monkeypatch) -> None:
    import agent.replay.timing as timing

    monkeypatch.setattr(timing, "SETTLE_TIMEOUT_S", 0.05)
    assert asyncio.run(ScriptedClock(0.0).release(1.0)) is False


def test_replay_robot_answers_with_recorded_statuses_then_dry_run() -> None:
    async def scenario() -> None:
        clock = ScriptedClock(start=5.0)
        robot = ReplayRobot(clock)
        recorded = RobotStatus(True, True, False, True, odom_x=1.5, odom_y=-0.5, odom_yaw=0.3)
        robot.script([RecordedStatus(5.0, recorded), RecordedStatus(5.0, None, "LeaseLost", "tablet")])
        assert await robot.status() == recorded
        try:
            await robot.status()
        except LeaseLost as exc:
            assert str(exc) == "tablet"
        else:
            raise AssertionError("the recorded lease loss was not replayed")
        fallback = await robot.status()  # nothing scripted: the dry-run body
        assert (fallback.odom_x, fallback.detail) == (0.0, "dry run")
        await robot.send(Sit())
        assert [r.command for r in robot.recorded] == [Sit()]

    asyncio.run(scenario())


class _CountingPerceiver:
    """A deterministic stand-in for the detector that says which thread ran it."""

    def __init__(self, threads: set[str]) -> None:
        self.threads = threads

    def __call__(self, frame: Frame) -> FrameResult:
        self.threads.add(threading.current_thread().name)
        time.sleep(0.01)
        return FrameResult(frame.camera, frame.seq, 0.0, frame.acquisition_time_local,
                           [], detect_ms=float(frame.image.sum()))


def test_detect_ahead_gives_each_frame_its_own_result_computed_early() -> None:
    threads: set[str] = set()
    ahead = DetectAhead(lambda: _CountingPerceiver(threads), workers=2)
    frames = [Frame("a", np.full((2, 2), i, np.uint8), float(i), float(i), seq=i) for i in range(8)]
    for frame in frames:
        ahead.submit(frame)
    ahead.forget(frames[3])  # never asked for
    perceive = ahead.perceiver_factory()()
    results = [perceive(f) for f in frames if f.seq != 3]
    ahead.close()
    assert [r.seq for r in results] == [0, 1, 2, 4, 5, 6, 7]
    assert [r.detect_ms for r in results] == [4.0 * i for i in (0, 1, 2, 4, 5, 6, 7)]
    assert ahead.ahead_hits == 7
    assert all(name.startswith("detect-ahead") for name in threads) and len(threads) == 2


def test_compare_commands() -> None:
    live = [(1.00, Sit()), (2.0, GoTo(1.0, 2.0, 0.1, "odom", 1.0)), (3.0, Stop())]
    same = compare_commands(live, list(live))
    assert same.identical and same.same_kinds_in_order
    close = compare_commands(live, [(1.01, Sit()), (2.0, GoTo(1.0, 2.001, 0.1, "odom", 1.0)), (3.0, Stop())])
    assert close.same_kinds_in_order and not close.identical
    assert abs(close.max_param_diff - 0.001) < 1e-12 and abs(close.max_time_diff_s - 0.01) < 1e-12
    different = compare_commands(live, [(1.0, Sit()), (3.0, Stop())])
    assert not different.same_kinds_in_order
    assert different.first_difference.startswith("#1: live {") and "'kind': 'stop'" in different.first_difference
    longer = compare_commands(live, [*live, (4.0, Stop())])
    assert not longer.same_kinds_in_order
    assert longer.first_difference == "live sent 3 commands, replay 4; #3: replay {'kind': 'stop'} was not sent live"


def test_detections_do_not_depend_on_the_interpreter_thread_count() -> None:
    """Replay runs one single-threaded interpreter per core; live runs may use more threads per
    interpreter. Same pixels in, same detections out, bit for bit (shipped model)."""
    import cv2
    from skimage import data

    from perception.config import DetectorConfig
    from perception.detector import TFLiteDetector

    images = [
        cv2.resize(data.camera(), (640, 480)),
        cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR),
        cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR),
    ]
    one = TFLiteDetector.from_config(DetectorConfig(num_threads=1))
    two = TFLiteDetector.from_config(DetectorConfig(num_threads=2))
    found = [one.detect(image) for image in images]
    assert [two.detect(image) for image in images] == found
    assert any(d.label == "person" for d in found[1])  # the comparison is not of empty lists
