"""Behaviors in a closed loop with a kinematic robot: follow converges and settles, go-to-fiducial
arrives within tolerance and sits, and the deadman deadlines stop the robot when the agent dies.

The loop is a tiny simulation: a robot that integrates the commands it is sent (velocity until
its deadline; go-to at the command's speed caps until its deadline), a camera that sees what is
in front of it at 15 Hz with a little (seeded) noise, and the engine ticked at 10 Hz.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from behaviors.commands import GoTo, MotionCommand, Sit, Stand, Stop, Velocity
from behaviors.config import load_rules
from behaviors.engine import CueEngine, EngineEvent, RobotPose
from behaviors.geometry import range_and_bearing, wrap_angle
from configs import SHIPPED_DIR as CONFIG_DIR
from perception.detection import FrameResult, Sighting

CAMERA = "frontleft_fisheye_image"
FRAME_DT = 1.0 / 15.0
TICK_DT = 0.1
SIM_DT = 0.01


@dataclass
class KinematicSpot:
    """Executes motion commands the way Spot does, as far as timing and deadlines go."""

    pose: RobotPose = field(default_factory=lambda: RobotPose(0.0, 0.0, 0.0))
    sitting: bool = False
    velocity: Velocity | None = None
    goto: GoTo | None = None
    until: float = 0.0

    def send(self, cmd: MotionCommand, now: float) -> None:
        self.velocity = self.goto = None
        if isinstance(cmd, Velocity):
            self.velocity, self.until = cmd, now + cmd.duration_s
        elif isinstance(cmd, GoTo):
            self.goto, self.until = cmd, now + cmd.duration_s
        elif isinstance(cmd, Sit):
            self.sitting = True
        elif isinstance(cmd, Stand):
            self.sitting = False

    def advance(self, now: float, dt: float) -> None:
        if now >= self.until or self.sitting:
            return  # deadline passed: the robot stops by itself
        p = self.pose
        if self.velocity is not None:
            v = self.velocity
            c, s = math.cos(p.yaw), math.sin(p.yaw)
            self.pose = RobotPose(
                p.x + (c * v.vx - s * v.vy) * dt,
                p.y + (s * v.vx + c * v.vy) * dt,
                wrap_angle(p.yaw + v.vyaw * dt),
            )
        elif self.goto is not None:
            g = self.goto
            dx, dy = g.x - p.x, g.y - p.y
            dist = math.hypot(dx, dy)
            step = min(dist, (g.max_linear_mps or 1.0) * dt)
            x, y = (p.x + dx / dist * step, p.y + dy / dist * step) if dist > 1e-9 else (p.x, p.y)
            dyaw = wrap_angle(g.yaw - p.yaw)
            turn = math.copysign(min(abs(dyaw), (g.max_angular_rps or 1.0) * dt), dyaw)
            self.pose = RobotPose(x, y, wrap_angle(p.yaw + turn))


@dataclass
class Target:
    label: str
    position: Callable[[float], tuple[float, float]]
    yaw: float | None = None


def camera_frame(
    robot: RobotPose, targets: list[Target], t: float, seq: int, rng: random.Random
) -> FrameResult:
    """What a forward camera with a 140 deg field of view sees, placed in odom with ~3 cm noise."""
    sightings = []
    for target in targets:
        tx, ty = target.position(t)
        tx, ty = tx + rng.gauss(0.0, 0.03), ty + rng.gauss(0.0, 0.03)
        distance, bearing = range_and_bearing(robot, tx, ty)
        if abs(bearing) > math.radians(70) or distance > 10.0:
            continue
        yaw = None if target.yaw is None else target.yaw + rng.gauss(0.0, math.radians(1.5))
        sightings.append(
            Sighting(
                label=target.label,
                score=0.8,
                camera=CAMERA,
                box=(200.0, 100.0, 300.0, 400.0),
                image_size=(640, 480),
                time_local=t,
                position_odom=(tx, ty, 0.0),
                distance_m=distance,
                bearing_rad=bearing,
                yaw_odom=yaw,
            )
        )
    return FrameResult(CAMERA, seq, t, t, sightings)


@dataclass
class Run:
    engine: CueEngine
    robot: KinematicSpot
    commands: list[tuple[float, MotionCommand]]
    events: list[EngineEvent]
    poses: list[tuple[float, RobotPose]]
    frames: list[FrameResult]


def run_loop(
    engine: CueEngine,
    targets: list[Target],
    duration: float,
    agent_dies_at: float | None = None,
    start: RobotPose | None = None,
    seed: int = 0,
) -> Run:
    robot = KinematicSpot(pose=start or RobotPose(0.0, 0.0, 0.0))
    rng = random.Random(seed)
    commands: list[tuple[float, MotionCommand]] = []
    events: list[EngineEvent] = []
    poses = []
    frames: list[FrameResult] = []
    next_frame, next_tick, seq = 0.0, 0.0, 0
    for i in range(int(round(duration / SIM_DT))):
        t = i * SIM_DT
        alive = agent_dies_at is None or t < agent_dies_at
        if alive and t >= next_frame - 1e-9:
            frames.append(camera_frame(robot.pose, targets, t, seq, rng))
            engine.observe(frames[-1])
            seq += 1
            next_frame += FRAME_DT
        if alive and t >= next_tick - 1e-9:
            for cmd in engine.tick(t, robot.pose).commands:
                commands.append((t, cmd))
                robot.send(cmd, t)
            events += engine.drain_events()
            next_tick += TICK_DT
        robot.advance(t, SIM_DT)
        poses.append((t, robot.pose))
    return Run(engine, robot, commands, events, poses, frames)


def walking_person(t: float) -> tuple[float, float]:
    """4 m ahead, walks 0.4 m/s along a gentle curve for 8 s, then stands still."""
    s = min(t, 8.0)
    return 4.0 + 0.4 * s, 0.6 * math.sin(s / 4.0) * s / 2.0


def assert_deadman(run: Run) -> None:
    moving = [c for _, c in run.commands if isinstance(c, (Velocity, GoTo))]
    assert moving, "the behavior never moved the robot"
    assert all(0.0 < c.duration_s <= 1.0 for c in moving)
    # the behaviors obey the limits themselves: the engine's last guard never had to step in
    assert not [e for e in run.events if e.kind in ("command_capped", "command_refused")]


def test_follow_converges_on_a_walking_person_and_stops_when_they_stop() -> None:
    config = load_rules(CONFIG_DIR / "rules" / "follow.yaml")
    run = run_loop(CueEngine(config), [Target("person", walking_person)], duration=20.0)
    final = run.robot.pose
    px, py = walking_person(20.0)
    distance, bearing = range_and_bearing(final, px, py)
    assert distance == pytest.approx(1.5, abs=0.25)
    assert abs(bearing) < math.radians(12)
    # it kept up while the person walked: the gap never grew (the speed cap, 0.6 m/s against
    # the person's 0.4 m/s, bounds how fast it closes) ...
    gaps = [range_and_bearing(pose, *walking_person(t))[0] for t, pose in run.poses if t <= 8.0]
    assert max(gaps) < 4.1 and gaps[-1] < 3.2
    # ... and settled: no velocity command in the last 5 s, the last command a Stop, no motion
    assert not [c for t, c in run.commands if t > 15.0 and isinstance(c, Velocity)]
    assert isinstance(run.commands[-1][1], Stop)
    assert math.dist((final.x, final.y), (run.poses[-600][1].x, run.poses[-600][1].y)) < 1e-9
    assert_deadman(run)
    speeds = [math.hypot(c.vx, c.vy) for _, c in run.commands if isinstance(c, Velocity)]
    assert max(speeds) <= config.limits.max_speed_mps + 1e-9
    assert run.engine.active == "follow"  # still following: the person is in view


def test_follow_finishes_with_stop_when_the_target_vanishes() -> None:
    config = load_rules(CONFIG_DIR / "rules" / "follow.yaml")
    visible_until = 4.0

    def person(t: float) -> tuple[float, float]:
        return (4.0 + 0.4 * t, 0.0) if t < visible_until else (1e6, 0.0)  # gone (out of range)

    run = run_loop(CueEngine(config), [Target("person", person)], duration=10.0)
    finished = [e for e in run.events if e.kind == "behavior_finished"]
    assert finished and "lost" in finished[0].data["detail"]
    last_seen = max(f.time_local for f in run.frames if f.sightings)
    assert last_seen < visible_until
    # lost_timeout_s after the last sighting, at the next tick
    assert 3.0 < finished[0].time - last_seen <= 3.0 + TICK_DT + 1e-9
    assert isinstance(run.commands[-1][1], Stop)
    # and it stopped walking on stale information well before giving up
    assert not [c for t, c in run.commands if t > visible_until + 0.7 and isinstance(c, Velocity)]


def test_go_to_fiducial_arrives_within_tolerance_then_sits() -> None:
    config = load_rules(CONFIG_DIR / "rules" / "fiducial.yaml")
    tag = Target(
        "tag:1", lambda t: (3.8, 1.2), yaw=math.radians(200)
    )  # faces back toward the robot
    run = run_loop(CueEngine(config), [tag], duration=20.0)
    goal_x = 3.8 + math.cos(math.radians(200))
    goal_y = 1.2 + math.sin(math.radians(200))
    goal_yaw = wrap_angle(math.radians(20))
    final = run.robot.pose
    assert math.hypot(final.x - goal_x, final.y - goal_y) <= 0.1
    assert abs(wrap_angle(final.yaw - goal_yaw)) <= math.radians(10)
    kinds = [type(c).__name__ for _, c in run.commands]
    assert kinds[0] == "Stand" and kinds[-1] == "Sit" and "GoTo" in kinds
    assert run.robot.sitting
    finished = [e.data for e in run.events if e.kind == "behavior_finished"]
    assert finished[-1]["outcome"] == "succeeded" and finished[-1]["name"] == "sequence"
    assert_deadman(run)
    assert all(
        c.frame == "odom" and c.max_linear_mps == config.limits.max_speed_mps
        for _, c in run.commands
        if isinstance(c, GoTo)
    )


def test_robot_stops_within_a_second_when_the_agent_dies() -> None:
    config = load_rules(CONFIG_DIR / "rules" / "follow.yaml")
    dies = 5.0
    run = run_loop(
        CueEngine(config), [Target("person", walking_person)], duration=9.0, agent_dies_at=dies
    )
    moving_at_death = [p for t, p in run.poses if abs(t - dies) < SIM_DT / 2][0]
    later = [p for t, p in run.poses if t >= dies + 1.0]
    assert (
        math.dist((moving_at_death.x, moving_at_death.y), (later[-1].x, later[-1].y)) > 0.01
    )  # it was moving
    assert all(p == later[0] for p in later)  # and stopped within 1 s


def test_go_to_fiducial_loop_is_deterministic() -> None:
    config = load_rules(CONFIG_DIR / "rules" / "fiducial.yaml")
    tag = Target("tag:1", lambda t: (3.0, -1.0), yaw=math.radians(160))
    a = run_loop(CueEngine(config), [tag], duration=6.0, seed=3)
    b = run_loop(CueEngine(config), [tag], duration=6.0, seed=3)
    assert a.commands == b.commands and a.events == b.events


def test_turn_toward_faces_the_target_then_stops() -> None:
    engine = CueEngine(load_rules(CONFIG_DIR / "rules" / "follow.yaml"))
    engine.pause_cues()  # only the operator's launch acts
    start = RobotPose(0.0, 0.0, math.radians(-50))  # the person is 50 deg to the left, in view
    engine.observe(
        camera_frame(start, [Target("person", lambda t: (2.0, 0.0))], 0.0, 0, random.Random(1))
    )
    engine.launch("turn_toward", {"label": "person", "tolerance_deg": 5}, now=0.0)
    run = run_loop(engine, [Target("person", lambda t: (2.0, 0.0))], duration=6.0, start=start)
    _, bearing = range_and_bearing(run.robot.pose, 2.0, 0.0)
    assert abs(bearing) <= math.radians(6)  # 5 deg tolerance + sighting noise
    velocities = [c for _, c in run.commands if isinstance(c, Velocity)]
    assert velocities and all(c.vx == 0.0 and c.vy == 0.0 and c.vyaw > 0 for c in velocities)
    assert isinstance(run.commands[-1][1], Stop)
    finished = [e.data for e in run.events if e.kind == "behavior_finished"]
    assert finished[0]["name"] == "turn_toward" and finished[0]["outcome"] == "succeeded"
    assert_deadman(run)
