"""The legs in a RobotState: `kinematic_state.joint_states` (12 joints: angle, velocity,
acceleration) and `foot_state` (4 feet: position in the body frame, contact), from one body
snapshot (`sim.legs` does the geometry).

Velocities and accelerations are central differences of the same leg pose a few milliseconds
before and after the snapshot (the gait phase, body height and stance steps advanced at their
current rates), so they agree with how the angles change between states.
"""

from __future__ import annotations

import math

from bosdyn.api import robot_state_pb2

from sim import legs
from sim.body_state import BodyState, MotorPower

_DIFF_S = 0.005  # step of the central differences


def body_velocity_in_body(state: BodyState) -> tuple[float, float, float]:
    c, s = math.cos(state.yaw), math.sin(state.yaw)
    return c * state.vx + s * state.vy, -s * state.vx + c * state.vy, state.wz


def leg_pose(state: BodyState, dt: float = 0.0) -> legs.LegPose:
    """The legs of `state`, or `dt` seconds later at the current rates."""
    stance_feet = lift = None
    if state.stance is not None:
        stance_feet, lift = state.stance.feet_at(state.stepped_ns + int(dt * 1e9))
    return legs.leg_pose(
        height=state.height + state.height_rate * dt,
        gait_phase=state.counters.gait_cycles + state.gait_rate * dt,
        body_velocity=body_velocity_in_body(state),
        walking=state.gait_rate > 0.0,
        stance=stance_feet,
        lift=lift,
    )


def fill_legs(state: BodyState, robot: robot_state_pb2.RobotState) -> None:
    """Add joint states and foot states for `state` to `robot`."""
    now = leg_pose(state)
    angles = legs.joint_angles(now)
    before = legs.joint_angles(leg_pose(state, -_DIFF_S))
    after = legs.joint_angles(leg_pose(state, _DIFF_S))
    for name, angle in angles.items():
        joint = robot.kinematic_state.joint_states.add(name=name)
        joint.position.value = angle
        joint.velocity.value = (after[name] - before[name]) / (2.0 * _DIFF_S)
        joint.acceleration.value = (after[name] - 2.0 * angle + before[name]) / (_DIFF_S * _DIFF_S)
        joint.load.value = 0.0 if state.motor_power == MotorPower.OFF else _load(name, now)
    for leg in legs.LEGS:
        x, y, z = now.feet[leg]
        foot = robot.foot_state.add()
        foot.foot_position_rt_body.x, foot.foot_position_rt_body.y, foot.foot_position_rt_body.z = x, y, z
        foot.contact = (
            robot_state_pb2.FootState.CONTACT_MADE if now.contact[leg] else robot_state_pb2.FootState.CONTACT_LOST
        )
        if now.contact[leg]:
            foot.terrain.ground_mu_est = 0.8
            foot.terrain.frame_name = "body"
            foot.terrain.ground_contact_normal_rt_frame.z = 1.0


BODY_WEIGHT_N = 32.7 * 9.81


def _load(joint: str, pose: legs.LegPose) -> float:
    """Static torque (N m) that holds the body's share on a foot in contact; 0 in the air."""
    leg, kind = joint.split(".")
    if not pose.contact[leg]:
        return 0.0
    share = BODY_WEIGHT_N / max(1, sum(pose.contact.values()))
    hip_x, hip_y = legs.hip_position(leg)
    foot_x, foot_y, _ = pose.feet[leg]
    if kind == "hx":
        return share * (foot_y - hip_y)
    if kind == "hy":
        return -share * (foot_x - hip_x)
    # Knee: the lever is the foot's horizontal distance from the knee.
    hx, hy, kn = legs.leg_joints(leg, pose.feet[leg])
    knee_x = hip_x - legs.THIGH * math.sin(hy)
    return -share * (foot_x - knee_x)
