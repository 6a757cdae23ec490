"""The simulated robot's body: clock, motor power, posture, pose in odom, and what it was told to do.

A physics thread steps the body at a fixed rate (default 50 Hz): power and posture transitions,
the active mobility command (stand, sit, stop, velocity with an end time, SE2 trajectory to a
goal) under Spot-like speed and acceleration limits, and the safety hooks (E-Stop levels, lease
comms loss) that services register with `add_tick_hook`.

Frames: the body pose lives in `odom`. `vision` is odom shifted by the fixed `VISION_TFORM_ODOM`
(a real robot's vision frame drifts away from odom; a fixed, non-trivial offset makes a client
that mixes the two frames visibly wrong instead of accidentally right).

Time: everything here is on the robot clock (`RobotClock`), which runs `clock_offset_s` ahead of
the host clock, so clients must use time sync for end times just as with a real robot.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from bosdyn.api import basic_command_pb2, geometry_pb2, power_pb2, robot_state_pb2
from bosdyn.client.math_helpers import Quat, SE2Pose, SE3Pose, angle_diff
from google.protobuf.timestamp_pb2 import Timestamp

from sim.scene import Scenario

_LOGGER = logging.getLogger(__name__)

NSEC_PER_SEC = 1_000_000_000

# vision = VISION_TFORM_ODOM * odom (a fixed offset, see module doc).
VISION_TFORM_ODOM = SE2Pose(x=0.75, y=-0.4, angle=0.25)

FeedbackStatus = basic_command_pb2.RobotCommandFeedbackStatus
TrajStatus = basic_command_pb2.SE2TrajectoryCommand.Feedback
StandStatus = basic_command_pb2.StandCommand.Feedback
SitStatus = basic_command_pb2.SitCommand.Feedback
SafeOffStatus = basic_command_pb2.SafePowerOffCommand.Feedback
BehaviorFault = robot_state_pb2.BehaviorFault


class RobotClock:
    """The robot's wall clock: host time plus a fixed offset (a robot is never in sync with you)."""

    def __init__(self, offset_s: float = 0.0) -> None:
        self.offset_ns = int(round(offset_s * NSEC_PER_SEC))

    def now_ns(self) -> int:
        return time.time_ns() + self.offset_ns

    def now_s(self) -> float:
        return self.now_ns() / NSEC_PER_SEC

    @staticmethod
    def to_timestamp(robot_ns: int, out: Timestamp | None = None) -> Timestamp:
        ts = out if out is not None else Timestamp()
        ts.seconds, ts.nanos = divmod(robot_ns, NSEC_PER_SEC)
        return ts

    @staticmethod
    def from_timestamp(ts: Timestamp) -> int:
        return ts.seconds * NSEC_PER_SEC + ts.nanos


@dataclass(frozen=True)
class SpotLimits:
    """Speed, acceleration, heights and timings close to a real Spot's defaults."""

    max_vx: float = 1.6  # m/s forward/backward
    max_vy: float = 0.8  # m/s sideways
    max_wz: float = 1.0  # rad/s yaw
    max_linear_accel: float = 2.0  # m/s^2
    max_angular_accel: float = 3.0  # rad/s^2
    stand_height: float = 0.50  # body origin above the floor when standing
    sit_height: float = 0.20
    min_body_height_offset: float = -0.15  # allowed MobilityParams.body_height range
    max_body_height_offset: float = 0.12
    stand_up_s: float = 0.8
    sit_down_s: float = 1.0
    power_on_s: float = 0.6
    power_off_s: float = 0.2
    goal_tolerance_m: float = 0.02  # SE2 trajectory "at goal"
    goal_tolerance_rad: float = 0.03
    near_goal_m: float = 0.3
    settled_speed: float = 0.02  # m/s and rad/s below which the body counts as settled


class MotorPower(enum.Enum):
    OFF = robot_state_pb2.PowerState.STATE_OFF
    POWERING_ON = robot_state_pb2.PowerState.STATE_POWERING_ON
    ON = robot_state_pb2.PowerState.STATE_ON
    POWERING_OFF = robot_state_pb2.PowerState.STATE_POWERING_OFF


class Posture(enum.Enum):
    SITTING = "sitting"
    STANDING_UP = "standing_up"
    STANDING = "standing"
    SITTING_DOWN = "sitting_down"


class CommandKind(enum.Enum):
    STAND = "stand"
    SIT = "sit"
    STOP = "stop"
    VELOCITY = "velocity"
    SE2_TRAJECTORY = "se2_trajectory"
    SAFE_POWER_OFF = "safe_power_off"



@dataclass
class CommandRecord:
    """One robot command and its feedback as it evolves (statuses are bosdyn.api enum values)."""

    command_id: int
    kind: CommandKind
    issued_ns: int
    end_time_ns: int | None = None
    status: int = FeedbackStatus.STATUS_PROCESSING
    # Command-specific feedback status (stand/sit/safe-power-off/trajectory "Feedback.Status").
    detail_status: int = 0
    body_movement_status: int = 0
    # Velocity: (vx, vy, wz) in `velocity_frame`; trajectory: goal (x, y, yaw) in odom.
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    velocity_frame: str = "body"
    goal_odom: tuple[float, float, float] | None = None
    max_speed: tuple[float, float, float] | None = None  # MobilityParams.vel_limit, if any
    body_height_offset: float = 0.0
    full_body: bool = False  # sent as a full-body command (feedback goes in full_body_feedback)


@dataclass
class PowerCommandRecord:
    power_command_id: int
    request: int
    status: int = power_pb2.STATUS_IN_PROGRESS
    done_ns: int = 0


@dataclass(frozen=True)
class FaultRecord:
    fault_id: int
    cause: int
    onset_ns: int
    clearable: bool = True


@dataclass(frozen=True)
class BodyState:
    """A consistent snapshot of the robot body, taken under the world lock."""

    robot_ns: int
    sim_time_s: float
    x: float
    y: float
    yaw: float
    height: float
    vx: float  # odom frame, m/s
    vy: float
    wz: float
    motor_power: MotorPower
    posture: Posture
    faults: tuple[FaultRecord, ...]
    version: int

    @property
    def odom_tform_body(self) -> SE3Pose:
        return body_pose(self.x, self.y, self.height, self.yaw)

    @property
    def vision_tform_body(self) -> SE3Pose:
        return VISION_TFORM_ODOM.get_closest_se3_transform() * self.odom_tform_body


def body_pose(x: float, y: float, z: float, yaw: float) -> SE3Pose:
    return SE3Pose(x, y, z, Quat(w=math.cos(yaw / 2.0), x=0.0, y=0.0, z=math.sin(yaw / 2.0)))


def wrap_angle(angle: float) -> float:
    return math.atan2(math.sin(angle), math.cos(angle))


TickHook = Callable[[int], None]
EstopLevelFn = Callable[[int], int]

_HISTORY = 512  # how many command records are kept for feedback requests
_MAX_STEP_S = 0.1  # longest physics step integrated at once (after a long stall, time is lost)


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
        self._x, self._y, self._yaw = start.x, start.y, start.yaw
        self._height = self.limits.sit_height
        self._vx = self._vy = self._wz = 0.0
        self._power = MotorPower.OFF
        self._power_change_done_ns = 0
        self._posture = Posture.SITTING
        self._posture_start_ns = 0
        self._posture_from_height = self._height
        self._posture_to_height = self._height
        self._posture_duration_ns = 1
        self._body_height_offset = 0.0
        self._mobility: CommandRecord | None = None  # what the legs are doing now
        self._records: OrderedDict[int, CommandRecord] = OrderedDict()
        self._power_records: OrderedDict[int, PowerCommandRecord] = OrderedDict()
        self._next_command_id = 1
        self._next_power_id = 1
        self._next_fault_id = 1
        self._faults: list[FaultRecord] = []
        self._settle_then_cut = False  # an E-Stop asked to sit, then cut power
        self._version = 0
        self._tick_hooks: list[TickHook] = []
        self._estop_level_fn: EstopLevelFn = lambda _now: 4  # ESTOP_LEVEL_NONE
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="sim-physics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

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
            return BodyState(
                robot_ns=now,
                sim_time_s=self.sim_time_at(now),
                x=self._x,
                y=self._y,
                yaw=self._yaw,
                height=self._height,
                vx=self._vx,
                vy=self._vy,
                wz=self._wz,
                motor_power=self._power,
                posture=self._posture,
                faults=tuple(self._faults),
                version=self._version,
            )

    @property
    def version(self) -> int:
        """Bumped whenever the body state changes (lets services cache what they build from it)."""
        return self._version

    def estop_level(self) -> int:
        return self._estop_level_fn(self.clock.now_ns())

    def command_feedback(self, command_id: int) -> CommandRecord | None:
        """A copy of the command's record; 0 means the active mobility command."""
        with self._lock:
            if command_id == 0:
                record = self._mobility
            else:
                record = self._records.get(command_id)
            return replace(record) if record is not None else None

    def power_feedback(self, power_command_id: int) -> PowerCommandRecord | None:
        with self._lock:
            record = self._power_records.get(power_command_id)
            return replace(record) if record is not None else None

    # ----------------------------------------------------------------- test hooks
    def teleport(self, x: float, y: float, yaw: float) -> None:
        """Put the body at (x, y, yaw) in odom and stop it (tests and scenario resets)."""
        with self._lock:
            self._x, self._y, self._yaw = x, y, wrap_angle(yaw)
            self._vx = self._vy = self._wz = 0.0
            self._version += 1

    # ----------------------------------------------------------------- power
    def request_power(self, request: int) -> PowerCommandRecord:
        """Start a power command (PowerCommandRequest.Request). Caller checked lease and E-Stop."""
        Req = power_pb2.PowerCommandRequest
        with self._lock:
            now = self.clock.now_ns()
            record = PowerCommandRecord(self._next_power_id, request)
            self._next_power_id += 1
            if request == Req.REQUEST_ON_MOTORS:
                if self._power == MotorPower.ON:
                    record.status = power_pb2.STATUS_SUCCESS
                else:
                    self._power = MotorPower.POWERING_ON
                    self._power_change_done_ns = now + int(self.limits.power_on_s * NSEC_PER_SEC)
                    record.done_ns = self._power_change_done_ns
            elif request == Req.REQUEST_OFF_MOTORS:
                # Cuts power now, whatever the posture (the SDK's safe power off is a robot command).
                self._cut_power_locked(now, reason="power request off")
                record.status = power_pb2.STATUS_SUCCESS
            else:
                record.status = power_pb2.STATUS_SUCCESS  # payload ports, wifi: nothing to simulate
            self._remember_power(record)
            self._version += 1
            return replace(record)

    def _remember_power(self, record: PowerCommandRecord) -> None:
        self._power_records[record.power_command_id] = record
        while len(self._power_records) > _HISTORY:
            self._power_records.popitem(last=False)

    def _cut_power_locked(self, now: int, reason: str, by_estop: bool = False, fall_fault: bool = False) -> None:
        if self._power == MotorPower.OFF:
            return
        _LOGGER.info("motor power cut (%s)", reason)
        was_up = self._posture != Posture.SITTING
        self._power = MotorPower.OFF
        self._vx = self._vy = self._wz = 0.0
        self._posture = Posture.SITTING
        self._height = self.limits.sit_height
        self._settle_then_cut = False
        for record in self._power_records.values():
            if record.status == power_pb2.STATUS_IN_PROGRESS and record.request == power_pb2.PowerCommandRequest.REQUEST_ON_MOTORS:
                record.status = power_pb2.STATUS_ESTOPPED if by_estop else power_pb2.STATUS_OVERRIDDEN
        if self._mobility is not None:
            if self._mobility.kind == CommandKind.SAFE_POWER_OFF:
                self._mobility.detail_status = SafeOffStatus.STATUS_POWERED_OFF
            else:
                # Nothing keeps executing without motor power.
                self._mobility.status = FeedbackStatus.STATUS_COMMAND_OVERRIDDEN
                self._mobility = None
        if fall_fault and was_up:
            self._add_fault_locked(now, BehaviorFault.CAUSE_FALL)

    def _add_fault_locked(self, now: int, cause: int) -> None:
        self._faults.append(FaultRecord(self._next_fault_id, cause, now))
        self._next_fault_id += 1

    def clear_fault(self, fault_id: int) -> bool:
        with self._lock:
            for fault in self._faults:
                if fault.fault_id == fault_id and fault.clearable:
                    self._faults.remove(fault)
                    self._version += 1
                    return True
            return False

    def on_comms_loss(self, cause: int = BehaviorFault.CAUSE_LEASE_TIMEOUT) -> None:
        """The lease holder went silent: stop, sit, power off (a real robot's comms-loss behaviour)."""
        with self._lock:
            now = self.clock.now_ns()
            if self._power == MotorPower.OFF:
                return
            self._add_fault_locked(now, cause)
            self._begin_command_locked(
                CommandKind.SAFE_POWER_OFF, now, detail_status=SafeOffStatus.STATUS_IN_PROGRESS, full_body=True
            )
            self._safe_power_off_locked(now)

    # ----------------------------------------------------------------- commands
    def _begin_command_locked(self, kind: CommandKind, now: int, **fields: object) -> CommandRecord:
        record = CommandRecord(self._next_command_id, kind, now, **fields)  # type: ignore[arg-type]
        self._next_command_id += 1
        previous = self._mobility
        if previous is not None and previous.status == FeedbackStatus.STATUS_PROCESSING:
            previous.status = FeedbackStatus.STATUS_COMMAND_OVERRIDDEN
        self._mobility = record
        self._records[record.command_id] = record
        while len(self._records) > _HISTORY:
            self._records.popitem(last=False)
        self._version += 1
        return record

    def command_stand(self, body_height_offset: float = 0.0) -> int:
        lim = self.limits
        offset = min(max(body_height_offset, lim.min_body_height_offset), lim.max_body_height_offset)
        with self._lock:
            now = self.clock.now_ns()
            record = self._begin_command_locked(
                CommandKind.STAND, now, detail_status=StandStatus.STATUS_IN_PROGRESS, body_height_offset=offset
            )
            self._body_height_offset = offset
            if self._posture in (Posture.SITTING, Posture.SITTING_DOWN) or abs(
                self._height - (lim.stand_height + offset)
            ) > 1e-3:
                self._start_posture_locked(now, Posture.STANDING_UP, lim.stand_height + offset, lim.stand_up_s)
            else:
                record.detail_status = StandStatus.STATUS_IS_STANDING
            return record.command_id

    def command_sit(self) -> int:
        with self._lock:
            now = self.clock.now_ns()
            record = self._begin_command_locked(CommandKind.SIT, now, detail_status=SitStatus.STATUS_IN_PROGRESS)
            if self._posture == Posture.SITTING:
                record.detail_status = SitStatus.STATUS_IS_SITTING
            else:
                self._start_sit_locked(now)
            return record.command_id

    def command_stop(self, full_body: bool = True) -> int:
        """Stop walking and hold the current stance (full-body or mobility stop/freeze)."""
        with self._lock:
            return self._begin_command_locked(CommandKind.STOP, self.clock.now_ns(), full_body=full_body).command_id

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
            now = self.clock.now_ns()
            record = self._begin_command_locked(
                CommandKind.VELOCITY,
                now,
                end_time_ns=end_time_ns,
                velocity=(vx, vy, wz),
                velocity_frame=frame,
                max_speed=max_speed,
            )
            self._ensure_standing_locked(now)
            return record.command_id

    def command_se2_trajectory(
        self,
        goal_odom: tuple[float, float, float],
        end_time_ns: int,
        max_speed: tuple[float, float, float] | None = None,
    ) -> int:
        with self._lock:
            now = self.clock.now_ns()
            record = self._begin_command_locked(
                CommandKind.SE2_TRAJECTORY,
                now,
                end_time_ns=end_time_ns,
                goal_odom=goal_odom,
                max_speed=max_speed,
                detail_status=TrajStatus.STATUS_GOING_TO_GOAL,
                body_movement_status=TrajStatus.BODY_STATUS_MOVING,
            )
            self._update_trajectory_feedback_locked(record)
            self._ensure_standing_locked(now)
            return record.command_id

    def command_safe_power_off(self) -> int:
        with self._lock:
            now = self.clock.now_ns()
            record = self._begin_command_locked(
                CommandKind.SAFE_POWER_OFF, now, detail_status=SafeOffStatus.STATUS_IN_PROGRESS, full_body=True
            )
            if self._power == MotorPower.OFF:
                record.detail_status = SafeOffStatus.STATUS_POWERED_OFF
            else:
                self._safe_power_off_locked(now)
            return record.command_id

    def _safe_power_off_locked(self, now: int) -> None:
        """Sit, then power off (the posture step powers off once seated)."""
        if self._posture == Posture.SITTING:
            self._begin_power_off_locked(now)
        else:
            self._start_sit_locked(now)

    def _begin_power_off_locked(self, now: int) -> None:
        if self._power in (MotorPower.ON, MotorPower.POWERING_ON):
            self._power = MotorPower.POWERING_OFF
            self._power_change_done_ns = now + int(self.limits.power_off_s * NSEC_PER_SEC)

    def _ensure_standing_locked(self, now: int) -> None:
        """Mobility commands stand the robot up first, as a real Spot does."""
        if self._posture in (Posture.SITTING, Posture.SITTING_DOWN):
            self._start_posture_locked(
                now, Posture.STANDING_UP, self.limits.stand_height + self._body_height_offset, self.limits.stand_up_s
            )

    def _start_sit_locked(self, now: int) -> None:
        if self._posture != Posture.SITTING:
            self._start_posture_locked(now, Posture.SITTING_DOWN, self.limits.sit_height, self.limits.sit_down_s)

    def _start_posture_locked(self, now: int, posture: Posture, to_height: float, duration_s: float) -> None:
        self._posture = posture
        self._posture_start_ns = now
        self._posture_from_height = self._height
        self._posture_to_height = to_height
        self._posture_duration_ns = max(1, int(duration_s * NSEC_PER_SEC))

    # ----------------------------------------------------------------- physics
    def _run(self) -> None:
        period = self.physics_dt
        next_tick = last = time.monotonic()
        while not self._stop_event.is_set():
            # Integrate the time that really passed: a robot does not slow down (or brake more
            # slowly) because this thread was scheduled late on a busy machine.
            now = time.monotonic()
            dt, last = min(max(now - last, 0.0), _MAX_STEP_S), now
            try:
                self.step(dt if dt > 0.0 else period)
            except Exception:
                _LOGGER.exception("sim physics step failed")
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay < -1.0:  # fell far behind (machine suspended?): don't try to catch up
                next_tick = time.monotonic()
                delay = 0.0
            if delay > 0:
                self._stop_event.wait(delay)

    def step(self, dt: float) -> None:
        """Advance the world by dt seconds (the physics thread calls this; tests may too)."""
        now = self.clock.now_ns()
        for hook in self._tick_hooks:
            hook(now)
        level = self._estop_level_fn(now)
        with self._lock:
            self._apply_estop_locked(now, level)
            self._step_power_locked(now)
            self._step_posture_locked(now)
            self._step_motion_locked(now, dt)
            self._version += 1

    def _apply_estop_locked(self, now: int, level: int) -> None:
        if level == 1:  # ESTOP_LEVEL_CUT
            self._cut_power_locked(now, reason="E-Stop CUT", by_estop=True, fall_fault=True)
        elif level == 2 and self._power != MotorPower.OFF:  # ESTOP_LEVEL_SETTLE_THEN_CUT
            if not self._settle_then_cut:
                self._settle_then_cut = True
                if self._mobility is not None and self._mobility.status == FeedbackStatus.STATUS_PROCESSING:
                    self._mobility.status = FeedbackStatus.STATUS_COMMAND_OVERRIDDEN
                self._mobility = None
                self._start_sit_locked(now)
            if self._posture == Posture.SITTING:
                self._cut_power_locked(now, reason="E-Stop SETTLE_THEN_CUT", by_estop=True)
        else:
            self._settle_then_cut = False  # released before the cut: stay seated, powered

    def _step_power_locked(self, now: int) -> None:
        if self._power == MotorPower.POWERING_ON and now >= self._power_change_done_ns:
            self._power = MotorPower.ON
            self._posture = Posture.SITTING
            for record in self._power_records.values():
                if record.status == power_pb2.STATUS_IN_PROGRESS:
                    record.status = power_pb2.STATUS_SUCCESS
        elif self._power == MotorPower.POWERING_OFF and now >= self._power_change_done_ns:
            self._cut_power_locked(now, reason="powered off")

    def _step_posture_locked(self, now: int) -> None:
        if self._posture not in (Posture.STANDING_UP, Posture.SITTING_DOWN):
            return
        if self._power != MotorPower.ON:
            return
        frac = min(1.0, (now - self._posture_start_ns) / self._posture_duration_ns)
        self._height = self._posture_from_height + frac * (self._posture_to_height - self._posture_from_height)
        if frac < 1.0:
            return
        mobility = self._mobility
        if self._posture == Posture.STANDING_UP:
            self._posture = Posture.STANDING
            if mobility is not None and mobility.kind == CommandKind.STAND:
                mobility.detail_status = StandStatus.STATUS_IS_STANDING
        else:
            self._posture = Posture.SITTING
            if mobility is not None and mobility.kind == CommandKind.SIT:
                mobility.detail_status = SitStatus.STATUS_IS_SITTING
            if mobility is not None and mobility.kind == CommandKind.SAFE_POWER_OFF:
                self._begin_power_off_locked(now)

    def _speed_caps(self, record: CommandRecord | None) -> tuple[float, float, float]:
        lim = self.limits
        caps = (lim.max_vx, lim.max_vy, lim.max_wz)
        if record is not None and record.max_speed is not None:
            caps = tuple(min(c, m) if m > 0 else c for c, m in zip(caps, record.max_speed))  # type: ignore[assignment]
        return caps

    def _desired_velocity_locked(self, now: int) -> tuple[float, float, float]:
        """Desired (vx, vy) in odom and wz, from the active mobility command."""
        record = self._mobility
        if (
            record is None
            or self._power != MotorPower.ON
            or self._posture != Posture.STANDING
            or record.status != FeedbackStatus.STATUS_PROCESSING
        ):
            return 0.0, 0.0, 0.0
        if record.end_time_ns is not None and now >= record.end_time_ns:
            # The command's end time (robot clock) has passed: stop and hold the stand.
            record.status = FeedbackStatus.STATUS_COMMAND_TIMED_OUT
            return 0.0, 0.0, 0.0
        cap_x, cap_y, cap_w = self._speed_caps(record)
        if record.kind == CommandKind.VELOCITY:
            vx, vy, wz = record.velocity
            if record.velocity_frame in ("odom", "vision"):
                if record.velocity_frame == "vision":
                    # A velocity in vision, rotated into odom.
                    c, s = math.cos(-VISION_TFORM_ODOM.angle), math.sin(-VISION_TFORM_ODOM.angle)
                    vx, vy = c * vx - s * vy, s * vx + c * vy
                c, s = math.cos(-self._yaw), math.sin(-self._yaw)
                vx, vy = c * vx - s * vy, s * vx + c * vy  # into body to apply the limits
            bx = min(max(vx, -cap_x), cap_x)
            by = min(max(vy, -cap_y), cap_y)
            wz = min(max(wz, -cap_w), cap_w)
            c, s = math.cos(self._yaw), math.sin(self._yaw)
            return c * bx - s * by, s * bx + c * by, wz
        if record.kind == CommandKind.SE2_TRAJECTORY and record.goal_odom is not None:
            return self._trajectory_velocity_locked(record.goal_odom, cap_x, cap_y, cap_w)
        return 0.0, 0.0, 0.0

    def _trajectory_velocity_locked(
        self, goal: tuple[float, float, float], cap_x: float, cap_y: float, cap_w: float
    ) -> tuple[float, float, float]:
        """Holonomic go-to-goal: speed profile that can always brake in time, P-control at the end."""
        lim = self.limits
        dx, dy = goal[0] - self._x, goal[1] - self._y
        dist = math.hypot(dx, dy)
        dyaw = angle_diff(goal[2], self._yaw)
        speed = min(math.sqrt(2.0 * lim.max_linear_accel * dist) * 0.8, 2.0 * dist)
        if dist > 1e-9:
            ux, uy = dx / dist, dy / dist
        else:
            ux = uy = 0.0
        # Into the body frame to respect the per-axis caps, scaling the vector (keeps direction).
        c, s = math.cos(self._yaw), math.sin(self._yaw)
        bx, by = (c * ux + s * uy) * speed, (-s * ux + c * uy) * speed
        scale = 1.0
        if abs(bx) > cap_x:
            scale = min(scale, cap_x / abs(bx))
        if abs(by) > cap_y:
            scale = min(scale, cap_y / abs(by))
        bx, by = bx * scale, by * scale
        wz = math.copysign(min(math.sqrt(2.0 * lim.max_angular_accel * abs(dyaw)) * 0.8, 2.5 * abs(dyaw), cap_w), dyaw)
        return c * bx - s * by, s * bx + c * by, wz

    def _update_trajectory_feedback_locked(self, record: CommandRecord) -> None:
        if record.goal_odom is None:
            return
        lim = self.limits
        dist = math.hypot(record.goal_odom[0] - self._x, record.goal_odom[1] - self._y)
        dyaw = abs(angle_diff(record.goal_odom[2], self._yaw))
        if dist <= lim.goal_tolerance_m and dyaw <= lim.goal_tolerance_rad:
            record.detail_status = TrajStatus.STATUS_AT_GOAL
        elif dist <= lim.near_goal_m and dyaw <= 0.2:
            record.detail_status = TrajStatus.STATUS_NEAR_GOAL
        else:
            record.detail_status = TrajStatus.STATUS_GOING_TO_GOAL
        moving = math.hypot(self._vx, self._vy) > lim.settled_speed or abs(self._wz) > lim.settled_speed
        settled = record.detail_status == TrajStatus.STATUS_AT_GOAL and not moving
        record.body_movement_status = TrajStatus.BODY_STATUS_SETTLED if settled else TrajStatus.BODY_STATUS_MOVING

    def _step_motion_locked(self, now: int, dt: float) -> None:
        lim = self.limits
        if self._power != MotorPower.ON:
            self._vx = self._vy = self._wz = 0.0
            return
        want_x, want_y, want_w = self._desired_velocity_locked(now)
        # Acceleration limits: linear as a vector, yaw separately.
        ax, ay = want_x - self._vx, want_y - self._vy
        dv = math.hypot(ax, ay)
        max_dv = lim.max_linear_accel * dt
        if dv > max_dv:
            ax, ay = ax * max_dv / dv, ay * max_dv / dv
        self._vx += ax
        self._vy += ay
        max_dw = lim.max_angular_accel * dt
        self._wz += min(max(want_w - self._wz, -max_dw), max_dw)
        self._x += self._vx * dt
        self._y += self._vy * dt
        self._yaw = wrap_angle(self._yaw + self._wz * dt)
        record = self._mobility
        if record is not None and record.kind == CommandKind.SE2_TRAJECTORY:
            self._update_trajectory_feedback_locked(record)


def vision_tform_odom_se3() -> SE3Pose:
    return VISION_TFORM_ODOM.get_closest_se3_transform()


def se3_to_proto(pose: SE3Pose, out: geometry_pb2.SE3Pose) -> None:
    """Write an SE3Pose into an existing proto field without allocating a new message."""
    out.position.x, out.position.y, out.position.z = pose.x, pose.y, pose.z
    out.rotation.w, out.rotation.x, out.rotation.y, out.rotation.z = pose.rot.w, pose.rot.x, pose.rot.y, pose.rot.z


__all__ = [
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
    "body_pose",
    "se3_to_proto",
    "vision_tform_odom_se3",
    "wrap_angle",
]
