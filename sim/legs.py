"""Spot's legs as the robot-state service reports them: where the four feet are (body frame),
which touch the ground, and the twelve joint angles and velocities that put them there.

Pure functions of a body snapshot, so every field of one RobotState agrees with the others and
with the body's own motion: the feet follow a trot whose phase the physics step integrates
(`BodyState.gait_phase`), a foot in stance slides back under the body at the body's velocity,
swing feet lift, and the joints come from inverse kinematics of a leg with Spot's proportions.
Joint velocities are derivatives of that same function along the gait phase and body height,
so they match how the angles change from one state to the next.

Joint conventions are Spot's (URDF names `fl.hx`, `fl.hy`, `fl.kn`, ...): `hx` rolls the leg
out (+x axis), `hy` swings the thigh (+y axis: positive moves the foot back), `kn` folds the
knee (always negative).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LEGS = ("fl", "fr", "hl", "hr")  # front-left, front-right, hind-left, hind-right (Spot's order)
JOINTS = ("hx", "hy", "kn")

# Leg geometry close to a real Spot's (metres, body frame: x forward, y left, z up).
HIP_X = 0.29785  # hip (hx joint) ahead of / behind the body origin
HIP_Y = 0.05500  # hip beside the body's centre line
ABDUCTION_OFFSET = 0.110945  # hy joint beside the hx joint
THIGH = 0.3205
SHIN = 0.3650
NOMINAL_FOOT_Y = HIP_Y + ABDUCTION_OFFSET  # foot straight under the thigh

# Trot: diagonal pairs (fl + hr, fr + hl) alternate; half of each cycle a foot is on the ground.
GAIT_HZ = 1.7  # gait cycles per second while walking
SWING_HEIGHT = 0.08  # how high a swinging foot lifts at full stride
FULL_STRIDE_SPEED = 0.3  # m/s at and above which swing feet lift fully
_PHASE_OFFSET = {"fl": 0.0, "hr": 0.0, "fr": 0.5, "hl": 0.5}
# Reach: how far (m, horizontally) a stance may put a foot from where it stands nominally.
STANCE_REACH = 0.35


@dataclass(frozen=True)
class LegPose:
    """Feet (body frame) and the contact each makes."""

    feet: dict[str, tuple[float, float, float]]
    contact: dict[str, bool]


def hip_position(leg: str) -> tuple[float, float]:
    return (HIP_X if leg[0] == "f" else -HIP_X, HIP_Y if leg[1] == "l" else -HIP_Y)


def nominal_foot(leg: str) -> tuple[float, float]:
    """Where a standing Spot puts the foot: under its thigh."""
    x, _ = hip_position(leg)
    return x, NOMINAL_FOOT_Y if leg[1] == "l" else -NOMINAL_FOOT_Y


def stance_reachable(leg: str, x: float, y: float) -> bool:
    """Can the foot be placed at (x, y) in the body frame without walking?"""
    nx, ny = nominal_foot(leg)
    # A foot never crosses the body's centre line or the other foot of its side.
    same_side = y > 0.03 if leg[1] == "l" else y < -0.03
    same_end = x > 0.05 if leg[0] == "f" else x < -0.05
    return same_side and same_end and math.hypot(x - nx, y - ny) <= STANCE_REACH


def leg_pose(
    height: float,
    gait_phase: float,
    body_velocity: tuple[float, float, float],
    walking: bool,
    stance: dict[str, tuple[float, float]] | None = None,
    lift: dict[str, float] | None = None,
) -> LegPose:
    """Feet in the body frame for a body `height` above the floor.

    body_velocity: (vx, vy, wz) in the body frame; while `walking` the feet trot at
    `gait_phase` (cycles), otherwise they stand where `stance` puts them (else nominally), a
    foot stepping to its place `lift` metres up.
    """
    feet: dict[str, tuple[float, float, float]] = {}
    contact: dict[str, bool] = {}
    vx, vy, wz = body_velocity
    for leg in LEGS:
        x, y = stance[leg] if stance is not None and not walking else nominal_foot(leg)
        z = -height
        touching = True
        if not walking and lift and lift.get(leg, 0.0) > 0.0:
            z += lift[leg]
            touching = False
        if walking:
            # A stance foot moves against the body's motion at the foot (linear plus yaw).
            fvx, fvy = vx - wz * y, vy + wz * x
            stride_x, stride_y = fvx / (2.0 * GAIT_HZ), fvy / (2.0 * GAIT_HZ)
            swing_lift = SWING_HEIGHT * min(1.0, math.hypot(fvx, fvy) / FULL_STRIDE_SPEED)
            p = (gait_phase + _PHASE_OFFSET[leg]) % 1.0
            if p < 0.5:  # on the ground, sliding from front (+stride/2) to back (-stride/2)
                s = 0.5 - 2.0 * p
            else:  # swinging forward
                s = -0.5 + 2.0 * (p - 0.5)
                z += swing_lift * math.sin(math.pi * 2.0 * (p - 0.5))
                touching = False
            x, y = x + s * stride_x, y + s * stride_y
        feet[leg] = (x, y, z)
        contact[leg] = touching
    return LegPose(feet, contact)


def leg_joints(leg: str, foot: tuple[float, float, float]) -> tuple[float, float, float]:
    """(hx, hy, kn) that put the foot at `foot` (body frame); out-of-reach feet are clamped."""
    hx0, hy0 = hip_position(leg)
    px, py, pz = foot[0] - hx0, foot[1] - hy0, foot[2]
    offset = ABDUCTION_OFFSET if leg[1] == "l" else -ABDUCTION_OFFSET
    # Abduction: the leg's plane is `offset` beside the hip; `h` is the foot's depth in it.
    h = math.sqrt(max(py * py + pz * pz - offset * offset, 1e-9))
    hx = math.atan2(pz, py) - math.atan2(-h, offset)
    hx = math.atan2(math.sin(hx), math.cos(hx))
    # Two-link planar leg in that plane: thigh angle hy from straight down, knee folded back.
    d = min(max(math.hypot(px, h), abs(THIGH - SHIN) + 1e-6), THIGH + SHIN - 1e-6)
    cos_kn = (d * d - THIGH * THIGH - SHIN * SHIN) / (2.0 * THIGH * SHIN)
    kn = -math.acos(min(1.0, max(-1.0, cos_kn)))
    hy = math.atan2(-px, h) - math.atan2(SHIN * math.sin(kn), THIGH + SHIN * math.cos(kn))
    return hx, hy, kn


def joint_angles(pose: LegPose) -> dict[str, float]:
    """Joint name (`fl.hx`, ...) -> angle (rad) for a leg pose."""
    angles: dict[str, float] = {}
    for leg in LEGS:
        for joint, angle in zip(JOINTS, leg_joints(leg, pose.feet[leg])):
            angles[f"{leg}.{joint}"] = angle
    return angles


def forward_foot(leg: str, hx: float, hy: float, kn: float) -> tuple[float, float, float]:
    """Where joints (hx, hy, kn) put the foot, body frame (the inverse of `leg_joints`)."""
    hx0, hy0 = hip_position(leg)
    offset = ABDUCTION_OFFSET if leg[1] == "l" else -ABDUCTION_OFFSET
    px = -THIGH * math.sin(hy) - SHIN * math.sin(hy + kn)
    depth = THIGH * math.cos(hy) + SHIN * math.cos(hy + kn)
    # Rotate (offset, -depth) in the y-z plane by hx.
    y = offset * math.cos(hx) + depth * math.sin(hx)
    z = offset * math.sin(hx) - depth * math.cos(hx)
    return hx0 + px, hy0 + y, z


STANCE_STEP_S = 0.35  # one foot's step when repositioning in place
FeetXY = tuple[tuple[float, float], ...]  # one (x, y) per leg, in LEGS order, body frame


@dataclass(frozen=True)
class StanceMove:
    """Feet stepping, one at a time, from one stance to another (body frame, body still)."""

    start: FeetXY
    goal: FeetXY
    start_ns: int
    accuracy: float = 0.05

    @property
    def steppers(self) -> tuple[int, ...]:
        """Legs that must move (farther than the accuracy asked for), in stepping order."""
        order = (0, 3, 1, 2)  # fl, hr, fr, hl: diagonals alternate, as Spot steps in place
        return tuple(
            i
            for i in order
            if math.hypot(self.goal[i][0] - self.start[i][0], self.goal[i][1] - self.start[i][1]) > self.accuracy
        )

    @property
    def duration_ns(self) -> int:
        return int(len(self.steppers) * STANCE_STEP_S * 1e9)

    def same_goal(self, goal: FeetXY, tolerance: float = 1e-3) -> bool:
        return all(math.hypot(a[0] - b[0], a[1] - b[1]) <= tolerance for a, b in zip(self.goal, goal))

    def done(self, now_ns: int) -> bool:
        return now_ns - self.start_ns >= self.duration_ns

    def feet_at(self, now_ns: int) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
        """Feet (x, y) per leg and the lift of the foot in the air at `now_ns`."""
        elapsed = (now_ns - self.start_ns) / 1e9
        feet: dict[str, tuple[float, float]] = {}
        lift: dict[str, float] = {}
        steppers = self.steppers
        for i, leg in enumerate(LEGS):
            if i not in steppers:
                feet[leg] = self.start[i]  # already within the accuracy asked for
                continue
            frac = min(1.0, max(0.0, (elapsed - steppers.index(i) * STANCE_STEP_S) / STANCE_STEP_S))
            (x0, y0), (x1, y1) = self.start[i], self.goal[i]
            feet[leg] = (x0 + frac * (x1 - x0), y0 + frac * (y1 - y0))
            if 0.0 < frac < 1.0:
                lift[leg] = SWING_HEIGHT * math.sin(math.pi * frac)
        return feet, lift


def nominal_stance() -> FeetXY:
    return tuple(nominal_foot(leg) for leg in LEGS)
