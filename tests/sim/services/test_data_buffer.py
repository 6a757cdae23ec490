"""Data buffer: operator comments are stored."""

from __future__ import annotations

from bosdyn.client.robot import Robot

from sim.server import SimServer


def test_operator_comments_are_stored(sim: SimServer, spot_robot: Robot) -> None:
    spot_robot.operator_comment("sim test comment")
    assert [c.message for c in sim.operator_comments] == ["sim test comment"]
