"""The simulated robot's body as the services see it: thread-safe, on the robot clock, stepped by
a physics thread.

A physics thread (`sim.physics_loop`, default 50 Hz) steps the body (`sim.body`): power and
posture transitions, the active mobility command (stand, sit, stop, velocity with an end time,
SE2 trajectory to a goal; the motion itself is `sim.motion`) under Spot-like limits
(`sim.spot_limits`), and the safety hooks (E-Stop levels, lease comms loss) that services
register with `add_tick_hook`. Services read the body through `snapshot()`
(`sim.body_state.BodyState`) and the feedback of commands (`sim.command_records`). This module
adds only what concurrency and time need: one lock around the body, the clock, the hooks.

Frames: the body pose lives in `odom`; `vision` is odom shifted by a fixed offset (`sim.poses`).

Time: everything here is on the robot clock (`sim.robot_clock.RobotClock`), which runs
`clock_offset_s` ahead of the host clock, so clients must use time sync for end times just as
with a real robot.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from bosdyn.api import robot_state_pb2

from sim.body import Body
from sim.body_state import BodyState, FaultRecord, MotorPower, Posture
from sim.command_records import CommandKind, CommandRecord, PowerCommandRecord
from sim.physics_loop import PhysicsLoop
from sim.poses import VISION_TFORM_ODOM
from sim.robot_clock import NSEC_PER_SEC, RobotClock
from sim.scene import Scenario
from sim.spot_limits import SpotLimits

BehaviorFault = robot_state_pb2.BehaviorFault

TickHook = Callable[[int], None]
EstopLevelFn = Callable[[int], int]


class SimWorld:
    """The robot body and its physics thread. Thread-safe; all public methods take the lock briefly."""

    def __init__(
        self,
        scenario: Scenario | None = None,
        clock: RobotClock | None = None,
        physics_hz: float = 50.0,
        limits: SpotLimits | None = None,
    ) -> None:
        self.scenario = scenario if scenario is not None else Scenario()
        self.clock = clock or RobotClock()
        self.limits = limits or SpotLimits()
        self.physics_dt = 1.0 / physics_hz
        self._lock = threading.RLock()
        self._start_ns = self.clock.now_ns()
        start = self.scenario.robot_start
        self._body = Body(self.limits, start.x, start.y, start.yaw)
        self._tick_hooks: list[TickHook] = []
        self._estop_level_fn: EstopLevelFn = lambda _now: 4  # ESTOP_LEVEL_NONE
        self._loop = PhysicsLoop(self.step, self.physics_dt)

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def add_tick_hook(self, hook: TickHook) -> None:
        """Call `hook(robot_now_ns)` every physics step, before the body moves (outside the lock)."""
        self._tick_hooks.append(hook)

    def set_estop_level_source(self, fn: EstopLevelFn) -> None:
        """`fn(robot_now_ns)` returns the E-Stop system's stop level (bosdyn.api.EstopStopLevel)."""
        self._estop_level_fn = fn

    # ----------------------------------------------------------------- reading
    def sim_time_at(self, robot_ns: int) -> float:
        """Seconds since sim start: the time scene objects (walking people) are posed at."""
        return (robot_ns - self._start_ns) / NSEC_PER_SEC

    def snapshot(self) -> BodyState:
        with self._lock:
            now = self.clock.now_ns()
            body = self._body
            return BodyState(
                robot_ns=now,
                sim_time_s=self.sim_time_at(now),
                x=body.motion.x,
                y=body.motion.y,
                yaw=body.motion.yaw,
                height=body.height,
                vx=body.motion.vx,
                vy=body.motion.vy,
                wz=body.motion.wz,
                motor_power=body.power,
                posture=body.posture,
                faults=tuple(body.faults),
                version=body.version,
                stepped_ns=body.stepped_ns or now,
                height_rate=body.height_rate,
                gait_rate=body.gait_rate,
                stance=body.stance,
                counters=body.counters,
                payload_ports_on=body.payload_ports_on,
                wifi_radio_on=body.wifi_radio_on,
            )

    @property
    def version(self) -> int:
        """Bumped whenever the body state changes (lets services cache what they build from it)."""
        return self._body.version

    def estop_level(self) -> int:
        return self._estop_level_fn(self.clock.now_ns())

    def command_feedback(self, command_id: int) -> CommandRecord | None:
        """A copy of the command's record; 0 means the active mobility command."""
        with self._lock:
            return self._body.command_feedback(command_id)

    def power_feedback(self, power_command_id: int) -> PowerCommandRecord | None:
        with self._lock:
            return self._body.power_feedback(power_command_id)

    # ----------------------------------------------------------------- test hooks
    def teleport(self, x: float, y: float, yaw: float) -> None:
        """Put the body at (x, y, yaw) in odom and stop it (tests and scenario resets)."""
        with self._lock:
            self._body.teleport(x, y, yaw)

    # ----------------------------------------------------------------- power and faults
    def request_power(self, request: int) -> PowerCommandRecord:
        """Start a power command (PowerCommandRequest.Request). Caller checked lease and E-Stop."""
        with self._lock:
            return self._body.request_power(self.clock.now_ns(), request)

    def clear_fault(self, fault_id: int) -> bool:
        with self._lock:
            return self._body.clear_fault(fault_id)

    def on_comms_loss(self, cause: int = BehaviorFault.CAUSE_LEASE_TIMEOUT) -> None:
        """The lease holder went silent: stop, sit, power off (a real robot's comms-loss behaviour)."""
        with self._lock:
            self._body.comms_loss(self.clock.now_ns(), cause)

    # ----------------------------------------------------------------- commands
    def command_stand(self, body_height_offset: float = 0.0) -> int:
        with self._lock:
            return self._body.stand(self.clock.now_ns(), body_height_offset)

    def command_sit(self) -> int:
        with self._lock:
            return self._body.sit(self.clock.now_ns())

    def command_stop(self, full_body: bool = True) -> int:
        """Stop walking and hold the current stance (full-body or mobility stop/freeze)."""
        with self._lock:
            return self._body.stop(self.clock.now_ns(), full_body)

    def command_velocity(
        self,
        vx: float,
        vy: float,
        wz: float,
        frame: str,
        end_time_ns: int,
        max_speed: tuple[float, float, float] | None = None,
    ) -> int:
        """Walk at (vx, vy, wz) given in `frame` ("body", "flat_body", "gpe", "odom", "vision") until end_time."""
        with self._lock:
            return self._body.velocity(self.clock.now_ns(), (vx, vy, wz), frame, end_time_ns, max_speed)

    def command_se2_trajectory(
        self,
        goal_odom: tuple[float, float, float],
        end_time_ns: int,
        max_speed: tuple[float, float, float] | None = None,
    ) -> int:
        with self._lock:
            return self._body.se2_trajectory(self.clock.now_ns(), goal_odom, end_time_ns, max_speed)

    def command_stance(self, goal: tuple[tuple[float, float], ...], accuracy: float, end_time_ns: int) -> int:
        """Step the feet to `goal` ((x, y) per leg fl, fr, hl, hr in the body frame) in place."""
        with self._lock:
            return self._body.place_feet(self.clock.now_ns(), goal, accuracy, end_time_ns)

    def command_safe_power_off(self) -> int:
        with self._lock:
            return self._body.safe_power_off(self.clock.now_ns())

    # ----------------------------------------------------------------- physics
    def step(self, dt: float) -> None:
        """Advance the world by dt seconds (the physics thread calls this; tests may too)."""
        now = self.clock.now_ns()
        for hook in self._tick_hooks:
            hook(now)
        level = self._estop_level_fn(now)
        with self._lock:
            self._body.step(now, dt, level)


__all__ = [
    # The body's vocabulary, re-exported: `sim.world` is what clients of the body import.
    "NSEC_PER_SEC",
    "VISION_TFORM_ODOM",
    "BodyState",
    "CommandKind",
    "CommandRecord",
    "FaultRecord",
    "MotorPower",
    "Posture",
    "PowerCommandRecord",
    "RobotClock",
    "SimWorld",
    "SpotLimits",
]
