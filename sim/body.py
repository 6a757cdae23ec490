"""The simulated body's state machine: motor power, posture, the active command, faults, and how
E-Stop levels and comms loss act on them.

Single-threaded and clock-free on purpose: every method takes the robot time `now` (ns) and
assumes its caller holds the lock, so the rules a real Spot follows (mobility commands stand the
robot up first; without motor power nothing executes; SETTLE_THEN_CUT sits before cutting; a
safe power off sits, then powers off) read as plain transitions. `sim.world.SimWorld` is its
thread-safe, clocked face; the motion itself is `sim.motion`.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from dataclasses import replace

from bosdyn.api import power_pb2, robot_state_pb2

from sim import legs, motion
from sim.body_counters import BodyCounters
from sim.body_state import FaultRecord, MotorPower, Posture
from sim.command_records import (
    CommandKind,
    CommandRecord,
    FeedbackStatus,
    PowerCommandRecord,
    SafeOffStatus,
    SitStatus,
    StanceStatus,
    StandStatus,
    TrajStatus,
    remember,
)
from sim.poses import wrap_angle
from sim.robot_clock import NSEC_PER_SEC
from sim.spot_limits import SpotLimits

_LOGGER = logging.getLogger(__name__)

BehaviorFault = robot_state_pb2.BehaviorFault
ESTOP_LEVEL_CUT = 1  # bosdyn.api.EstopStopLevel
ESTOP_LEVEL_SETTLE_THEN_CUT = 2


class Body:
    """Power, posture, commands and faults of one robot body, starting seated with motors off."""

    def __init__(self, limits: SpotLimits, x: float, y: float, yaw: float) -> None:
        self.limits = limits
        self.motion = motion.PlanarMotion(x, y, yaw)
        self.height = limits.sit_height
        self.power = MotorPower.OFF
        self._power_change_done_ns = 0
        self.posture = Posture.SITTING
        self._ramp = motion.HeightRamp(0, self.height, self.height, 1)  # standing up / sitting down
        self._body_height_offset = 0.0
        self.mobility: CommandRecord | None = None  # what the legs are doing now
        self._records: OrderedDict[int, CommandRecord] = OrderedDict()
        self._power_records: OrderedDict[int, PowerCommandRecord] = OrderedDict()
        self._next_command_id = 1
        self._next_power_id = 1
        self._next_fault_id = 1
        self.faults: list[FaultRecord] = []
        self._settle_then_cut = False  # an E-Stop asked to sit, then cut power
        self.stance: legs.StanceMove | None = None  # feet placed by a stance command
        self.counters = BodyCounters()
        self.gait_rate = 0.0  # trot cycles per second (0 unless walking)
        self.stepped_ns = 0  # robot time of the last physics step (what the pose is as of)
        self.payload_ports_on = True  # power to the payload ports and the Wi-Fi radio
        self.wifi_radio_on = True
        self.version = 0  # bumped on every change

    # ----------------------------------------------------------------- reading
    def command_feedback(self, command_id: int) -> CommandRecord | None:
        """A copy of the command's record; 0 means the active mobility command."""
        record = self.mobility if command_id == 0 else self._records.get(command_id)
        return replace(record) if record is not None else None

    def power_feedback(self, power_command_id: int) -> PowerCommandRecord | None:
        record = self._power_records.get(power_command_id)
        return replace(record) if record is not None else None

    def teleport(self, x: float, y: float, yaw: float) -> None:
        self.motion = motion.PlanarMotion(x, y, wrap_angle(yaw))
        self.version += 1

    # ----------------------------------------------------------------- power and faults
    def request_power(self, now: int, request: int) -> PowerCommandRecord:
        Req = power_pb2.PowerCommandRequest
        record = PowerCommandRecord(self._next_power_id, request)
        self._next_power_id += 1
        if request == Req.REQUEST_ON_MOTORS:
            if self.power == MotorPower.ON:
                record.status = power_pb2.STATUS_SUCCESS
            else:
                self.power = MotorPower.POWERING_ON
                self._power_change_done_ns = now + int(self.limits.power_on_s * NSEC_PER_SEC)
                record.done_ns = self._power_change_done_ns
        elif request == Req.REQUEST_OFF_MOTORS:
            # Cuts power now, whatever the posture (the SDK's safe power off is a robot command).
            self._cut_power(now, reason="power request off")
            record.status = power_pb2.STATUS_SUCCESS
        else:
            record.status = power_pb2.STATUS_SUCCESS
            if request in (Req.REQUEST_ON_PAYLOAD_PORTS, Req.REQUEST_OFF_PAYLOAD_PORTS):
                self.payload_ports_on = request == Req.REQUEST_ON_PAYLOAD_PORTS
            elif request in (Req.REQUEST_ON_WIFI_RADIO, Req.REQUEST_OFF_WIFI_RADIO):
                self.wifi_radio_on = request == Req.REQUEST_ON_WIFI_RADIO
        remember(self._power_records, record.power_command_id, record)
        self.version += 1
        return replace(record)

    def _cut_power(self, now: int, reason: str, by_estop: bool = False, fall_fault: bool = False) -> None:
        if self.power == MotorPower.OFF:
            return
        _LOGGER.info("motor power cut (%s)", reason)
        was_up = self.posture != Posture.SITTING
        self.power = MotorPower.OFF
        self.motion.halt()
        self.posture = Posture.SITTING
        self.height = self.limits.sit_height
        self._settle_then_cut = False
        self.stance = None
        for record in self._power_records.values():
            if record.status == power_pb2.STATUS_IN_PROGRESS and record.request == power_pb2.PowerCommandRequest.REQUEST_ON_MOTORS:
                record.status = power_pb2.STATUS_ESTOPPED if by_estop else power_pb2.STATUS_OVERRIDDEN
        if self.mobility is not None:
            if self.mobility.kind == CommandKind.SAFE_POWER_OFF:
                self.mobility.detail_status = SafeOffStatus.STATUS_POWERED_OFF
            else:
                # Nothing keeps executing without motor power.
                self.mobility.status = FeedbackStatus.STATUS_COMMAND_OVERRIDDEN
                self.mobility = None
        if fall_fault and was_up:
            self._add_fault(now, BehaviorFault.CAUSE_FALL)

    def _add_fault(self, now: int, cause: int) -> None:
        self.faults.append(FaultRecord(self._next_fault_id, cause, now))
        self._next_fault_id += 1

    def clear_fault(self, fault_id: int) -> bool:
        for fault in self.faults:
            if fault.fault_id == fault_id and fault.clearable:
                self.faults.remove(fault)
                self.version += 1
                return True
        return False

    def comms_loss(self, now: int, cause: int) -> None:
        """The lease holder went silent: stop, sit, power off (a real robot's comms-loss behaviour)."""
        if self.power == MotorPower.OFF:
            return
        self._add_fault(now, cause)
        self._begin_command(
            CommandKind.SAFE_POWER_OFF, now, detail_status=SafeOffStatus.STATUS_IN_PROGRESS, full_body=True
        )
        self._safe_power_off(now)

    # ----------------------------------------------------------------- commands
    def _begin_command(self, kind: CommandKind, now: int, **fields: object) -> CommandRecord:
        record = CommandRecord(self._next_command_id, kind, now, **fields)  # type: ignore[arg-type]
        self._next_command_id += 1
        previous = self.mobility
        if previous is not None and previous.status == FeedbackStatus.STATUS_PROCESSING:
            previous.status = FeedbackStatus.STATUS_COMMAND_OVERRIDDEN
        self.mobility = record
        remember(self._records, record.command_id, record)
        self.version += 1
        return record

    def stand(self, now: int, body_height_offset: float) -> int:
        lim = self.limits
        offset = min(max(body_height_offset, lim.min_body_height_offset), lim.max_body_height_offset)
        record = self._begin_command(
            CommandKind.STAND, now, detail_status=StandStatus.STATUS_IN_PROGRESS, body_height_offset=offset
        )
        self._body_height_offset = offset
        if self.posture in (Posture.SITTING, Posture.SITTING_DOWN) or abs(
            self.height - (lim.stand_height + offset)
        ) > 1e-3:
            self._start_posture(now, Posture.STANDING_UP, lim.stand_height + offset, lim.stand_up_s)
        else:
            record.detail_status = StandStatus.STATUS_IS_STANDING
        return record.command_id

    def sit(self, now: int) -> int:
        record = self._begin_command(CommandKind.SIT, now, detail_status=SitStatus.STATUS_IN_PROGRESS)
        if self.posture == Posture.SITTING:
            record.detail_status = SitStatus.STATUS_IS_SITTING
        else:
            self._start_sit(now)
        return record.command_id

    def stop(self, now: int, full_body: bool) -> int:
        return self._begin_command(CommandKind.STOP, now, full_body=full_body).command_id

    def velocity(
        self,
        now: int,
        velocity: tuple[float, float, float],
        frame: str,
        end_time_ns: int,
        max_speed: tuple[float, float, float] | None,
    ) -> int:
        record = self._begin_command(
            CommandKind.VELOCITY,
            now,
            end_time_ns=end_time_ns,
            velocity=velocity,
            velocity_frame=frame,
            max_speed=max_speed,
        )
        self.stance = None  # walking: the feet trot
        self._ensure_standing(now)
        return record.command_id

    def se2_trajectory(
        self,
        now: int,
        goal_odom: tuple[float, float, float],
        end_time_ns: int,
        max_speed: tuple[float, float, float] | None,
    ) -> int:
        record = self._begin_command(
            CommandKind.SE2_TRAJECTORY,
            now,
            end_time_ns=end_time_ns,
            goal_odom=goal_odom,
            max_speed=max_speed,
            detail_status=TrajStatus.STATUS_GOING_TO_GOAL,
            body_movement_status=TrajStatus.BODY_STATUS_MOVING,
        )
        motion.update_trajectory_feedback(record, self.motion, self.limits)
        self.stance = None  # walking: the feet trot
        self._ensure_standing(now)
        return record.command_id

    def place_feet(self, now: int, goal: legs.FeetXY, accuracy: float, end_time_ns: int) -> int:
        """Stance: step the feet to `goal` (body frame, LEGS order) without walking."""
        record = self._begin_command(
            CommandKind.STANCE, now, end_time_ns=end_time_ns, detail_status=StanceStatus.STATUS_GOING_TO_STANCE
        )
        if not all(legs.stance_reachable(leg, x, y) for leg, (x, y) in zip(legs.LEGS, goal)):
            record.detail_status = StanceStatus.STATUS_TOO_FAR_AWAY  # the robot does not move
            return record.command_id
        self._ensure_standing(now)
        start_ns = now
        if self.posture == Posture.STANDING_UP:
            start_ns = self._ramp.start_ns + self._ramp.duration_ns  # step once standing
        previous = self.stance
        if previous is not None and previous.same_goal(goal):
            pass  # the same stance again (clients re-send it with a new end time): keep stepping
        else:
            start = legs.nominal_stance()
            if previous is not None:
                feet, _lift = previous.feet_at(now)
                start = tuple(feet[leg] for leg in legs.LEGS)
            self.stance = legs.StanceMove(start, goal, start_ns, accuracy)
        assert self.stance is not None
        if self.stance.done(now):
            record.detail_status = StanceStatus.STATUS_STANCED
        return record.command_id

    def safe_power_off(self, now: int) -> int:
        record = self._begin_command(
            CommandKind.SAFE_POWER_OFF, now, detail_status=SafeOffStatus.STATUS_IN_PROGRESS, full_body=True
        )
        if self.power == MotorPower.OFF:
            record.detail_status = SafeOffStatus.STATUS_POWERED_OFF
        else:
            self._safe_power_off(now)
        return record.command_id

    def _safe_power_off(self, now: int) -> None:
        """Sit, then power off (the posture step powers off once seated)."""
        if self.posture == Posture.SITTING:
            self._begin_power_off(now)
        else:
            self._start_sit(now)

    def _begin_power_off(self, now: int) -> None:
        if self.power in (MotorPower.ON, MotorPower.POWERING_ON):
            self.power = MotorPower.POWERING_OFF
            self._power_change_done_ns = now + int(self.limits.power_off_s * NSEC_PER_SEC)

    def _ensure_standing(self, now: int) -> None:
        """Mobility commands stand the robot up first, as a real Spot does."""
        if self.posture in (Posture.SITTING, Posture.SITTING_DOWN):
            self._start_posture(
                now, Posture.STANDING_UP, self.limits.stand_height + self._body_height_offset, self.limits.stand_up_s
            )

    def _start_sit(self, now: int) -> None:
        self.stance = None  # sitting folds the legs
        if self.posture != Posture.SITTING:
            self._start_posture(now, Posture.SITTING_DOWN, self.limits.sit_height, self.limits.sit_down_s)

    def _start_posture(self, now: int, posture: Posture, to_height: float, duration_s: float) -> None:
        self.posture = posture
        self._ramp = motion.HeightRamp(now, self.height, to_height, max(1, int(duration_s * NSEC_PER_SEC)))

    # ----------------------------------------------------------------- stepping
    def step(self, now: int, dt: float, estop_level: int) -> None:
        """Advance by `dt` seconds at robot time `now` under the E-Stop system's `estop_level`."""
        self._apply_estop(now, estop_level)
        self._step_power(now)
        self._step_posture(now)
        self._step_motion(now, dt)
        self._count(now, dt)
        self.stepped_ns = now
        self.version += 1

    @property
    def height_rate(self) -> float:
        """How fast the body rises (m/s, negative: sinks) while standing up or sitting down."""
        if self.posture not in (Posture.STANDING_UP, Posture.SITTING_DOWN) or self.power != MotorPower.ON:
            return 0.0
        return (self._ramp.to_height - self._ramp.from_height) / (self._ramp.duration_ns / NSEC_PER_SEC)

    def _count(self, now: int, dt: float) -> None:
        """Metrics and the trot's rate; a finished stance reports STATUS_STANCED."""
        body = self.motion
        speed = math.hypot(body.vx, body.vy)
        standing = self.power == MotorPower.ON and self.posture == Posture.STANDING
        walking = standing and (speed > self.limits.settled_speed or abs(body.wz) > self.limits.settled_speed)
        self.gait_rate = legs.GAIT_HZ if walking else 0.0
        self.counters = self.counters.add(dt, self.power != MotorPower.OFF, standing, speed, self.gait_rate)
        record = self.mobility
        if (
            record is not None
            and record.kind == CommandKind.STANCE
            and self.stance is not None
            and record.detail_status == StanceStatus.STATUS_GOING_TO_STANCE
            and self.stance.done(now)
        ):
            record.detail_status = StanceStatus.STATUS_STANCED

    def _apply_estop(self, now: int, level: int) -> None:
        if level == ESTOP_LEVEL_CUT:
            self._cut_power(now, reason="E-Stop CUT", by_estop=True, fall_fault=True)
        elif level == ESTOP_LEVEL_SETTLE_THEN_CUT and self.power != MotorPower.OFF:
            if not self._settle_then_cut:
                self._settle_then_cut = True
                if self.mobility is not None and self.mobility.status == FeedbackStatus.STATUS_PROCESSING:
                    self.mobility.status = FeedbackStatus.STATUS_COMMAND_OVERRIDDEN
                self.mobility = None
                self._start_sit(now)
            if self.posture == Posture.SITTING:
                self._cut_power(now, reason="E-Stop SETTLE_THEN_CUT", by_estop=True)
        else:
            self._settle_then_cut = False  # released before the cut: stay seated, powered

    def _step_power(self, now: int) -> None:
        if self.power == MotorPower.POWERING_ON and now >= self._power_change_done_ns:
            self.power = MotorPower.ON
            self.posture = Posture.SITTING
            for record in self._power_records.values():
                if record.status == power_pb2.STATUS_IN_PROGRESS:
                    record.status = power_pb2.STATUS_SUCCESS
        elif self.power == MotorPower.POWERING_OFF and now >= self._power_change_done_ns:
            self._cut_power(now, reason="powered off")

    def _step_posture(self, now: int) -> None:
        if self.posture not in (Posture.STANDING_UP, Posture.SITTING_DOWN):
            return
        if self.power != MotorPower.ON:
            return
        self.height, done = self._ramp.at(now)
        if not done:
            return
        mobility = self.mobility
        if self.posture == Posture.STANDING_UP:
            self.posture = Posture.STANDING
            if mobility is not None and mobility.kind == CommandKind.STAND:
                mobility.detail_status = StandStatus.STATUS_IS_STANDING
        else:
            self.posture = Posture.SITTING
            if mobility is not None and mobility.kind == CommandKind.SIT:
                mobility.detail_status = SitStatus.STATUS_IS_SITTING
            if mobility is not None and mobility.kind == CommandKind.SAFE_POWER_OFF:
                self._begin_power_off(now)

    def _step_motion(self, now: int, dt: float) -> None:
        body = self.motion
        if self.power != MotorPower.ON:
            body.halt()
            return
        # Only a standing body walks; sitting, standing up or sitting down, it holds still.
        walking = self.mobility if self.posture == Posture.STANDING else None
        motion.accelerate_and_move(body, motion.desired_velocity(walking, body, self.limits, now), self.limits, dt)
        record = self.mobility
        if record is not None and record.kind == CommandKind.SE2_TRAJECTORY:
            motion.update_trajectory_feedback(record, body, self.limits)
