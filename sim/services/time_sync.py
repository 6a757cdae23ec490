"""Time sync: estimates each client's clock skew from the round trips it reports.

A client calls TimeSyncUpdate repeatedly; each request carries the timestamps of its previous
round trip (client send, robot receive, robot send, client receive). The skew and round-trip time
are computed NTP-style; the best estimate is the sample with the shortest round trip among the
recent ones, and the status turns OK after a few samples.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from dataclasses import dataclass, field

import grpc
from bosdyn.api import time_sync_pb2, time_sync_service_pb2_grpc
from bosdyn.client.time_sync import TimeSyncClient
from google.protobuf.duration_pb2 import Duration

from sim.robot_clock import NSEC_PER_SEC, RobotClock
from sim.services.common import InvalidRequest, Reply, ServiceSpec

MIN_SAMPLES = 3
KEPT_SAMPLES = 20
FORGET_AFTER_S = 600.0  # drop a client's estimates after this long without an update

TimeSyncState = time_sync_pb2.TimeSyncState


@dataclass(frozen=True)
class Estimate:
    round_trip_ns: int
    skew_ns: int  # robot clock minus client clock


@dataclass
class _ClockSession:
    samples: deque[Estimate] = field(default_factory=lambda: deque(maxlen=KEPT_SAMPLES))
    last_update_ns: int = 0

    def best(self) -> Estimate | None:
        return min(self.samples, key=lambda e: e.round_trip_ns) if self.samples else None


def estimate_from_round_trip(round_trip: time_sync_pb2.TimeSyncRoundTrip) -> Estimate | None:
    """NTP-style skew and round trip; None if the timestamps are missing or inconsistent."""
    stamps = (round_trip.client_tx, round_trip.server_rx, round_trip.server_tx, round_trip.client_rx)
    if any(ts.seconds == 0 and ts.nanos == 0 for ts in stamps):
        return None
    client_tx, server_rx, server_tx, client_rx = (RobotClock.from_timestamp(ts) for ts in stamps)
    round_trip_ns = (client_rx - client_tx) - (server_tx - server_rx)
    if round_trip_ns < 0 or server_tx < server_rx:
        return None
    skew_ns = ((server_rx - client_tx) + (server_tx - client_rx)) // 2
    return Estimate(round_trip_ns, skew_ns)


def _set_duration(out: Duration, ns: int) -> None:
    out.FromNanoseconds(ns)  # keeps seconds and nanos the same sign, as Duration requires


class TimeSyncServicer(time_sync_service_pb2_grpc.TimeSyncServiceServicer):
    spec = ServiceSpec(TimeSyncClient.default_service_name, TimeSyncClient.service_type)

    def __init__(self, clock: RobotClock, id_prefix: str = "spot-sim") -> None:
        self._clock = clock
        self._id_prefix = id_prefix
        self._sessions: dict[str, _ClockSession] = {}
        self._lock = threading.Lock()

    def add_to_server(self, server: grpc.Server) -> None:
        time_sync_service_pb2_grpc.add_TimeSyncServiceServicer_to_server(self, server)

    def is_synced(self, clock_identifier: str) -> bool:
        """True if this clock identifier belongs to a client whose time sync is established."""
        with self._lock:
            session = self._sessions.get(clock_identifier)
            return session is not None and len(session.samples) >= MIN_SAMPLES

    def TimeSyncUpdate(
        self, request: time_sync_pb2.TimeSyncUpdateRequest, context: grpc.ServicerContext
    ) -> time_sync_pb2.TimeSyncUpdateResponse:
        response = time_sync_pb2.TimeSyncUpdateResponse()
        with Reply(response, request, self._clock):
            if request.HasField("previous_round_trip") and not request.clock_identifier:
                raise InvalidRequest("previous_round_trip given without the clock_identifier it belongs to")
            now = self._clock.now_ns()
            with self._lock:
                self._forget_idle_locked(now)
                clock_id = request.clock_identifier
                session = self._sessions.get(clock_id) if clock_id else None
                if session is None:
                    clock_id = f"{self._id_prefix}-{secrets.token_hex(8)}"
                    session = self._sessions[clock_id] = _ClockSession()
                elif request.HasField("previous_round_trip"):
                    sample = estimate_from_round_trip(request.previous_round_trip)
                    if sample is not None:
                        session.samples.append(sample)
                        _set_duration(response.previous_estimate.round_trip_time, sample.round_trip_ns)
                        _set_duration(response.previous_estimate.clock_skew, sample.skew_ns)
                session.last_update_ns = now
                best = session.best()
                enough = len(session.samples) >= MIN_SAMPLES
            response.clock_identifier = clock_id
            state = response.state
            if best is not None:
                _set_duration(state.best_estimate.round_trip_time, best.round_trip_ns)
                _set_duration(state.best_estimate.clock_skew, best.skew_ns)
            state.status = TimeSyncState.STATUS_OK if enough else TimeSyncState.STATUS_MORE_SAMPLES_NEEDED
            RobotClock.to_timestamp(now, state.measurement_time)
        return response

    def _forget_idle_locked(self, now: int) -> None:
        horizon = now - int(FORGET_AFTER_S * NSEC_PER_SEC)
        stale = [cid for cid, s in self._sessions.items() if s.last_update_ns < horizon]
        for cid in stale:
            del self._sessions[cid]
