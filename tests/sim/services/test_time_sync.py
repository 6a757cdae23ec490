"""Time sync: the SDK measures the robot clock's offset from this host's."""

from __future__ import annotations

import pytest
from bosdyn.client.robot import Robot

from sim.server import DEFAULT_CLOCK_OFFSET_S


def test_time_sync_measures_the_robot_clock_offset(spot_robot: Robot) -> None:
    endpoint = spot_robot.time_sync.endpoint
    skew = endpoint.clock_skew.seconds + endpoint.clock_skew.nanos * 1e-9
    assert skew == pytest.approx(DEFAULT_CLOCK_OFFSET_S, abs=0.02)
    rtt = endpoint.round_trip_time.seconds + endpoint.round_trip_time.nanos * 1e-9
    assert 0.0 <= rtt < 0.1
    assert endpoint.clock_identifier
