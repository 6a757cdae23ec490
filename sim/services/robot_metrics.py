"""Robot metrics as `GetRobotMetrics` answers them (what `python -m bosdyn.client HOST state
metrics` prints): counted by the physics step (`sim.body_counters`), never made up."""

from __future__ import annotations

from bosdyn.api import robot_state_pb2

from sim.body_state import BodyState
from sim.robot_clock import RobotClock


def _duration(metric: object, seconds: float) -> None:
    whole = int(seconds)
    metric.duration.seconds = whole  # type: ignore[attr-defined]
    metric.duration.nanos = int((seconds - whole) * 1e9)  # type: ignore[attr-defined]


def fill_metrics(body: BodyState, out: robot_state_pb2.RobotMetrics) -> None:
    RobotClock.to_timestamp(body.robot_ns, out.timestamp)
    counters = body.counters
    out.metrics.add(label="distance", units="m", float_value=counters.distance_m)
    out.metrics.add(label="gait cycles", int_value=int(counters.gait_cycles))
    _duration(out.metrics.add(label="time moving"), counters.walking_s)
    _duration(out.metrics.add(label="time standing"), counters.standing_s)
    _duration(out.metrics.add(label="motor power on time"), counters.powered_s)
    _duration(out.metrics.add(label="robot power on time"), body.sim_time_s)
    out.metrics.add(label="electric power", units="W", float_value=counters.power_w)
    out.metrics.add(label="energy used", units="Wh", float_value=counters.energy_j / 3600.0)
