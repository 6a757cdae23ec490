"""The simulated Spot's hardware description: its skeleton (links and joints, as a URDF), an OBJ
mesh per link, and which power features it has. What `GetRobotHardwareConfiguration` and
`GetRobotLinkModel` answer.

Everything is generated from the leg geometry in `sim.legs` (boxes for a body and three links
per leg), so the URDF, the meshes and the joint states describe the same robot. No arm.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from bosdyn.api import robot_state_pb2

from sim import legs

BODY_SIZE = (0.85, 0.24, 0.18)  # length, width, height (m)
# Joint limits (rad) close to Spot's.
JOINT_LIMITS = {"hx": (-0.785, 0.785), "hy": (-0.898, 2.295), "kn": (-2.793, -0.255)}
MESH_DIR = "meshes"


@dataclass(frozen=True)
class LinkBox:
    """A link drawn as a box: its size and the centre's offset from the link frame."""

    size: tuple[float, float, float]
    centre: tuple[float, float, float]


def link_boxes() -> dict[str, LinkBox]:
    boxes = {"body": LinkBox(BODY_SIZE, (0.0, 0.0, 0.0))}
    for leg in legs.LEGS:
        boxes[f"{leg}.hip"] = LinkBox((0.09, 0.08, 0.09), (0.0, 0.0, 0.0))
        boxes[f"{leg}.uleg"] = LinkBox((0.06, 0.05, legs.THIGH), (0.0, 0.0, -legs.THIGH / 2))
        boxes[f"{leg}.lleg"] = LinkBox((0.04, 0.03, legs.SHIN), (0.0, 0.0, -legs.SHIN / 2))
    return boxes


def mesh_file_name(link: str) -> str:
    return f"{MESH_DIR}/{link}.obj"


def box_obj(link: str, box: LinkBox) -> str:
    """A box as a Wavefront OBJ: 8 vertices, 6 quads."""
    (sx, sy, sz), (cx, cy, cz) = box.size, box.centre
    lines = [f"# {link}: simulated Spot link (a box)", f"o {link}"]
    for dx in (-0.5, 0.5):
        for dy in (-0.5, 0.5):
            for dz in (-0.5, 0.5):
                lines.append(f"v {cx + dx * sx:.4f} {cy + dy * sy:.4f} {cz + dz * sz:.4f}")
    # Vertex index = 1 + 4*ix + 2*iy + iz; faces wound outwards.
    for face in ((1, 2, 4, 3), (5, 7, 8, 6), (1, 5, 6, 2), (3, 4, 8, 7), (1, 3, 7, 5), (2, 6, 8, 4)):
        lines.append("f " + " ".join(str(i) for i in face))
    return "\n".join(lines) + "\n"


def _urdf_link(name: str) -> str:
    return (
        f'  <link name="{name}"><visual><geometry><mesh filename="{mesh_file_name(name)}"/></geometry>'
        "</visual></link>"
    )


def _urdf_joint(name: str, parent: str, child: str, xyz: tuple[float, float, float], axis: str) -> str:
    low, high = JOINT_LIMITS[name.split(".")[1]]
    x, y, z = xyz
    return (
        f'  <joint name="{name}" type="revolute"><parent link="{parent}"/><child link="{child}"/>'
        f'<origin xyz="{x:.6f} {y:.6f} {z:.6f}" rpy="0 0 0"/><axis xyz="{axis}"/>'
        f'<limit lower="{low}" upper="{high}" effort="100" velocity="15"/></joint>'
    )


@cache
def urdf() -> str:
    parts = ['<?xml version="1.0"?>', '<robot name="spot">', _urdf_link("body")]
    for leg in legs.LEGS:
        hip_x, hip_y = legs.hip_position(leg)
        offset = legs.ABDUCTION_OFFSET if leg[1] == "l" else -legs.ABDUCTION_OFFSET
        parts += [_urdf_link(f"{leg}.{part}") for part in ("hip", "uleg", "lleg")]
        parts.append(_urdf_joint(f"{leg}.hx", "body", f"{leg}.hip", (hip_x, hip_y, 0.0), "1 0 0"))
        parts.append(_urdf_joint(f"{leg}.hy", f"{leg}.hip", f"{leg}.uleg", (0.0, offset, 0.0), "0 1 0"))
        parts.append(_urdf_joint(f"{leg}.kn", f"{leg}.uleg", f"{leg}.lleg", (0.0, 0.0, -legs.THIGH), "0 1 0"))
        # The foot's contact point, where foot_state.foot_position_rt_body is measured.
        parts.append(
            f'  <link name="{leg}.toe"/><joint name="{leg}.toe" type="fixed"><parent link="{leg}.lleg"/>'
            f'<child link="{leg}.toe"/><origin xyz="0 0 {-legs.SHIN:.6f}" rpy="0 0 0"/></joint>'
        )
    parts.append("</robot>")
    return "\n".join(parts) + "\n"


def hardware_configuration() -> robot_state_pb2.HardwareConfiguration:
    config = robot_state_pb2.HardwareConfiguration()
    for name in link_boxes():
        config.skeleton.links.add(name=name)
    config.skeleton.urdf = urdf()
    # Power requests the sim carries out (PowerCommand): payload ports and Wi-Fi, not robot off/cycle.
    config.can_power_command_request_payload_ports = True
    config.can_power_command_request_wifi_radio = True
    config.can_power_command_request_off_robot = False
    config.can_power_command_request_cycle_robot = False
    config.has_audio_visual_system = False
    config.redundant_safety_stop_enabled = False
    return config


def link_model(link: str) -> robot_state_pb2.Skeleton.Link.ObjModel | None:
    """The OBJ mesh of `link`, or None when the robot has no such link."""
    box = link_boxes().get(link)
    if box is None:
        return None
    return robot_state_pb2.Skeleton.Link.ObjModel(file_name=mesh_file_name(link), file_contents=box_obj(link, box))


def joint_names() -> list[str]:
    return [f"{leg}.{joint}" for leg in legs.LEGS for joint in legs.JOINTS]


__all__ = ["JOINT_LIMITS", "hardware_configuration", "joint_names", "link_model", "urdf"]
