"""Robot-state service contract, through the SDK's RobotStateClient: hardware configuration (a
URDF with Spot's 12 leg joints), link meshes, metrics that count what the body did, and a
RobotState whose joints and feet move as the body sits, stands and walks (what the SDK's
get_robot_state / get_robot_state_async examples and `python -m bosdyn.client HOST state ...`
read)."""

from __future__ import annotations

import math
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from bosdyn.api import robot_state_pb2
from bosdyn.client.exceptions import InvalidRequestError
from bosdyn.client.frame_helpers import BODY_FRAME_NAME, ODOM_FRAME_NAME, get_a_tform_b
from bosdyn.client.robot import Robot
from bosdyn.client.robot_command import RobotCommandBuilder
from bosdyn.client.robot_state import RobotStateClient
from support.sim_sdk import run_bosdyn_cli, wait_until

from sim.server import SimServer

LEGS = ("fl", "fr", "hl", "hr")
JOINTS = [f"{leg}.{j}" for leg in LEGS for j in ("hx", "hy", "kn")]
CONTACT = robot_state_pb2.FootState.CONTACT_MADE


def state_client(robot: Robot) -> RobotStateClient:
    return robot.ensure_client(RobotStateClient.default_service_name)


def joints(state: robot_state_pb2.RobotState) -> dict[str, robot_state_pb2.JointState]:
    return {j.name: j for j in state.kinematic_state.joint_states}


def feet(state: robot_state_pb2.RobotState) -> list[tuple[float, float, float]]:
    return [(f.foot_position_rt_body.x, f.foot_position_rt_body.y, f.foot_position_rt_body.z) for f in state.foot_state]


def metrics(robot: Robot) -> dict[str, object]:
    out: dict[str, object] = {}
    for m in state_client(robot).get_robot_metrics().metrics:
        field = m.WhichOneof("values")
        value = getattr(m, field)
        out[m.label] = value.seconds + value.nanos / 1e9 if field == "duration" else value
    return out


# ---------------------------------------------------------------- forward kinematics from the URDF
def _rot(axis: str, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    if axis == "1 0 0":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    assert axis == "0 1 0", axis
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def urdf_foot(urdf: ET.Element, leg: str, angles: dict[str, float]) -> np.ndarray:
    """The toe in the body frame by chaining the URDF's joints (independent of the sim's IK)."""
    by_name = {j.get("name"): j for j in urdf.iter("joint")}
    rotation, position = np.eye(3), np.zeros(3)
    for name in (f"{leg}.hx", f"{leg}.hy", f"{leg}.kn"):
        joint = by_name[name]
        origin = np.array([float(v) for v in joint.find("origin").get("xyz").split()])  # type: ignore[union-attr]
        position = position + rotation @ origin
        rotation = rotation @ _rot(joint.find("axis").get("xyz"), angles[name])  # type: ignore[union-attr,arg-type]
    toe = by_name[f"{leg}.toe"]
    origin = np.array([float(v) for v in toe.find("origin").get("xyz").split()])  # type: ignore[union-attr]
    return position + rotation @ origin


# ---------------------------------------------------------------- hardware configuration, meshes
def test_hardware_configuration_is_an_armless_spot_with_a_urdf(spot_robot: Robot) -> None:
    config = state_client(spot_robot).get_robot_hardware_configuration()
    links = [link.name for link in config.skeleton.links]
    assert links[0] == "body"
    assert sorted(links[1:]) == sorted(f"{leg}.{part}" for leg in LEGS for part in ("hip", "uleg", "lleg"))
    urdf = ET.fromstring(config.skeleton.urdf)
    revolute = [j.get("name") for j in urdf.iter("joint") if j.get("type") == "revolute"]
    assert revolute == JOINTS
    assert not any("arm" in name for name in links)
    assert config.can_power_command_request_payload_ports and config.can_power_command_request_wifi_radio
    assert not config.redundant_safety_stop_enabled


def test_every_link_has_an_obj_mesh_and_unknown_links_are_invalid(spot_robot: Robot) -> None:
    client = state_client(spot_robot)
    for link in client.get_robot_hardware_configuration().skeleton.links:
        model = client.get_robot_link_model(link.name)
        assert model.file_name.endswith(f"{link.name}.obj")
        lines = model.file_contents.splitlines()
        vertices = [list(map(float, line.split()[1:])) for line in lines if line.startswith("v ")]
        faces = [list(map(int, line.split()[1:])) for line in lines if line.startswith("f ")]
        assert len(vertices) == 8 and len(faces) == 6
        assert all(1 <= i <= len(vertices) for face in faces for i in face)
    with pytest.raises(InvalidRequestError):
        client.get_robot_link_model("arm0.link_sh0")


# ---------------------------------------------------------------- joints and feet
def test_joint_states_and_feet_agree_with_the_urdf_sitting_and_standing(spot_robot: Robot, commanded) -> None:  # type: ignore[no-untyped-def]
    client = state_client(spot_robot)
    urdf = ET.fromstring(client.get_robot_hardware_configuration().skeleton.urdf)
    standing = client.get_robot_state()
    assert sorted(joints(standing)) == sorted(JOINTS)
    for leg, foot in zip(LEGS, feet(standing)):
        angles = {name: j.position.value for name, j in joints(standing).items()}
        np.testing.assert_allclose(urdf_foot(urdf, leg, angles), foot, atol=1e-6)
        assert foot[2] == pytest.approx(-0.5, abs=0.02)  # on the floor under a standing body
    assert all(f.contact == CONTACT for f in standing.foot_state)

    _robot, command_client = commanded
    command_client.robot_command(RobotCommandBuilder.synchro_sit_command())
    assert wait_until(lambda: feet(client.get_robot_state())[0][2] > -0.201, timeout=5)
    sitting = client.get_robot_state()
    for leg in LEGS:
        # Sitting folds every knee further and raises the feet towards the body.
        assert joints(sitting)[f"{leg}.kn"].position.value < joints(standing)[f"{leg}.kn"].position.value - 0.5
    assert all(z == pytest.approx(-0.2, abs=0.02) for _x, _y, z in feet(sitting))


def test_walking_trots_joints_oscillate_and_velocities_match_the_angles(spot_robot: Robot, commanded) -> None:  # type: ignore[no-untyped-def]
    robot, command_client = commanded
    client = state_client(robot)
    command_client.robot_command(RobotCommandBuilder.synchro_velocity_command(0.6, 0.0, 0.0), end_time_secs=time.time() + 3.0)
    time.sleep(0.8)  # up to speed
    samples: list[robot_state_pb2.RobotState] = []
    while len(samples) < 60:
        state = client.get_robot_state()
        if not samples or state.kinematic_state.acquisition_timestamp != samples[-1].kinematic_state.acquisition_timestamp:
            samples.append(state)
        time.sleep(0.005)
    hy = [joints(s)["fl.hy"].position.value for s in samples]
    assert max(hy) - min(hy) > 0.1, "the front-left thigh does not swing while walking"
    contacts = [[f.contact == CONTACT for f in s.foot_state] for s in samples]
    assert all(c[0] == c[3] and c[1] == c[2] for c in contacts), "a trot moves diagonal pairs together"
    assert any(not c[0] for c in contacts) and any(not c[1] for c in contacts), "each pair swings"
    assert all(any(c) for c in contacts), "always a pair on the ground"
    # Reported velocities match how the angles change between consecutive states (except across
    # a touch-down or lift-off, where a foot's velocity turns round within the interval).
    agree = total = 0
    for a, b in zip(samples, samples[1:]):
        stamp_a, stamp_b = a.kinematic_state.acquisition_timestamp, b.kinematic_state.acquisition_timestamp
        dt = (stamp_b.ToNanoseconds() - stamp_a.ToNanoseconds()) / 1e9
        if not 0.005 < dt < 0.05 or contacts[samples.index(a)] != contacts[samples.index(b)]:
            continue
        for name in ("fl.hy", "fl.kn", "hr.hy", "fr.kn"):
            ja, jb = joints(a)[name], joints(b)[name]
            finite = (jb.position.value - ja.position.value) / dt
            mean = (ja.velocity.value + jb.velocity.value) / 2
            agree += finite == pytest.approx(mean, abs=0.1 + 0.1 * abs(mean))
            total += 1
    assert total > 60 and agree / total > 0.95, (agree, total)


# ---------------------------------------------------------------- metrics, comms, faults, battery
def test_metrics_count_what_the_body_did(spot_robot: Robot, commanded) -> None:  # type: ignore[no-untyped-def]
    robot, command_client = commanded
    client = state_client(robot)
    before = metrics(robot)
    start = get_a_tform_b(client.get_robot_state().kinematic_state.transforms_snapshot, ODOM_FRAME_NAME, BODY_FRAME_NAME)
    standing_power = before["electric power"]
    command_client.robot_command(RobotCommandBuilder.synchro_velocity_command(0.5, 0.0, 0.0), end_time_secs=time.time() + 2.0)
    time.sleep(1.0)
    walking_power = metrics(robot)["electric power"]
    time.sleep(2.0)  # stopped again
    after = metrics(robot)
    end = get_a_tform_b(client.get_robot_state().kinematic_state.transforms_snapshot, ODOM_FRAME_NAME, BODY_FRAME_NAME)
    walked = math.hypot(end.x - start.x, end.y - start.y)
    assert walked > 0.5
    assert after["distance"] - before["distance"] == pytest.approx(walked, rel=0.05)
    moving_s = after["time moving"] - before["time moving"]
    assert 1.5 < moving_s < 3.0
    assert after["gait cycles"] - before["gait cycles"] == pytest.approx(1.7 * moving_s, abs=1.5)
    assert after["time standing"] - before["time standing"] > 2.5
    assert after["motor power on time"] > 2.5
    assert walking_power > standing_power > 0
    assert after["energy used"] > before["energy used"]


def test_state_has_comms_no_system_faults_and_a_draining_battery(spot_robot: Robot) -> None:
    client = state_client(spot_robot)
    first = client.get_robot_state()
    assert first.comms_states[0].wifi_state.current_mode == robot_state_pb2.WiFiState.MODE_ACCESS_POINT
    assert first.HasField("system_fault_state") and not first.system_fault_state.faults
    assert first.HasField("behavior_fault_state") and not first.behavior_fault_state.faults
    time.sleep(0.5)
    second = client.get_robot_state()
    assert second.battery_states[0].charge_percentage.value < first.battery_states[0].charge_percentage.value
    assert second.power_state.locomotion_estimated_runtime.seconds > 3600


# ---------------------------------------------------------------- the SDK's command-line tool
def test_bosdyn_cli_state_commands(sim: SimServer, tmp_path: Path) -> None:
    full = run_bosdyn_cli(sim, tmp_path, "state", "full")
    assert full.returncode == 0 and "joint_states" in full.stdout and "foot_state" in full.stdout, full.stderr
    hardware = run_bosdyn_cli(sim, tmp_path, "state", "hardware")
    assert hardware.returncode == 0 and 'name: "fl.uleg"' in hardware.stdout, hardware.stderr
    shown = run_bosdyn_cli(sim, tmp_path, "state", "metrics")
    assert shown.returncode == 0 and not shown.stderr, shown.stderr
    lines = {line.split("  ")[0].strip(): line for line in shown.stdout.splitlines()}
    assert "distance" in lines and lines["distance"].endswith(" m") and "gait cycles" in lines
    model = run_bosdyn_cli(sim, tmp_path, "state", "model", "--outdir", str(tmp_path / "model"))
    assert model.returncode == 0 and not model.stderr, model.stderr
    assert (tmp_path / "model" / "model.urdf").read_text().startswith("<?xml")
    assert len(list((tmp_path / "model").rglob("*.obj"))) == 13
    faults = run_bosdyn_cli(sim, tmp_path, "fault", "show")
    assert faults.returncode == 0 and not faults.stderr, faults.stderr
