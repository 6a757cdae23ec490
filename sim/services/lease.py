"""Lease service and lease checking for the services that need one (power, robot command).

bosdyn lease semantics: the lease service issues root leases `[n]` for a resource within an epoch
(AcquireLease when unclaimed, TakeLease always, each with n + 1). A client's wallet sub-leases and
advances them (`[n, k]`, `[n, k + 1]`, ...). A service accepts a lease that is the same as, newer
than, or a sub-lease of the newest it has seen and answers everything else with a LeaseUseResult
(STATUS_OLDER once someone took the lease, STATUS_REVOKED once it was returned or went stale,
STATUS_WRONG_EPOCH / STATUS_UNMANAGED / STATUS_INVALID_LEASE for leases it cannot know), which the
SDK turns into its LeaseUseError and uses to update the wallet.

The lease holder must retain or use the lease at least every `lease_timeout_s`. Otherwise the
lease goes *stale* (as on a robot): `on_stale` runs once (the world then sits and powers off:
comms loss), commands carrying it get STATUS_REVOKED, and another client may AcquireLease. If
the holder retains it again before someone else acquires, it is fresh again.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

import grpc
from bosdyn.api import lease_pb2, lease_service_pb2_grpc
from bosdyn.client.lease import Lease, LeaseClient

from sim.robot_clock import NSEC_PER_SEC, RobotClock
from sim.services.auth import TokenStore
from sim.services.common import Reply, ServiceSpec

_LOGGER = logging.getLogger(__name__)

BODY_RESOURCE = "body"
LeaseUseResult: TypeAlias = lease_pb2.LeaseUseResult


@dataclass
class _ResourceLease:
    resource: str
    epoch: str
    root_sequence: int = 0
    root: Lease | None = None  # the lease the service issued last
    owner: lease_pb2.LeaseOwner | None = None  # None: nobody holds it (never acquired, or returned)
    last_use_ns: int = 0
    stale: bool = False  # the holder went silent (see module doc)
    # Newest lease each consuming service has seen (sub-leases advance per command).
    latest_by_consumer: dict[str, Lease] = field(default_factory=dict)


def token_subject(context: grpc.ServicerContext, tokens: TokenStore) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return tokens.subject(value[len("Bearer "):]) or ""
    return ""


class LeaseManager:
    """Root leases per resource, staleness, and checking of leases presented to other services."""

    def __init__(
        self,
        clock: RobotClock,
        lease_timeout_s: float = 10.0,
        on_stale: Callable[[str], None] | None = None,
        resources: tuple[str, ...] = (BODY_RESOURCE,),
    ) -> None:
        self._clock = clock
        self.lease_timeout_ns = int(lease_timeout_s * NSEC_PER_SEC)
        self._on_stale = on_stale
        self._lock = threading.Lock()
        epoch = secrets.token_hex(8)
        self._resources = {name: _ResourceLease(name, epoch) for name in resources}

    @property
    def resource_tree(self) -> list[lease_pb2.ResourceTree]:
        return [lease_pb2.ResourceTree(resource=name) for name in self._resources]

    # -- issuing
    def acquire(self, resource: str, owner: lease_pb2.LeaseOwner, take: bool) -> tuple[str, Lease | None, lease_pb2.LeaseOwner | None]:
        """Returns ("ok" | "claimed" | "invalid", lease, owner)."""
        with self._lock:
            state = self._resources.get(resource)
            if state is None:
                return "invalid", None, None
            if state.owner is not None and not state.stale and not take:
                return "claimed", None, state.owner
            state.root_sequence += 1
            lease = Lease(
                lease_pb2.Lease(
                    resource=resource,
                    epoch=state.epoch,
                    sequence=[state.root_sequence],
                    client_names=[owner.client_name or "unknown"],
                )
            )
            state.root = lease
            state.owner = owner
            state.stale = False
            state.last_use_ns = self._clock.now_ns()
            state.latest_by_consumer.clear()
            return "ok", lease, owner

    def return_lease(self, proto: lease_pb2.Lease) -> int:
        Status = lease_pb2.ReturnLeaseResponse
        with self._lock:
            state = self._resources.get(proto.resource)
            if state is None:
                return Status.STATUS_INVALID_RESOURCE
            if state.root is None or state.owner is None or not Lease.is_valid_proto(proto):
                return Status.STATUS_NOT_ACTIVE_LEASE
            compare = Lease(proto).compare(state.root)
            if compare not in (Lease.CompareResult.SAME, Lease.CompareResult.SUB_LEASE):
                return Status.STATUS_NOT_ACTIVE_LEASE
            state.owner = None
            return Status.STATUS_OK

    # -- checking
    def check(self, proto: lease_pb2.Lease, consumer: str | None) -> LeaseUseResult:
        """Check a lease presented to `consumer` (a service name); None = the lease service itself.

        A successful check counts as the holder being alive (like RetainLease).
        """
        result = LeaseUseResult()
        result.attempted_lease.CopyFrom(proto)
        with self._lock:
            state = self._resources.get(proto.resource)
            if not Lease.is_valid_proto(proto):
                result.status = LeaseUseResult.STATUS_INVALID_LEASE
                return result
            if state is None:
                result.status = LeaseUseResult.STATUS_UNMANAGED
                return result
            root = state.root
            if root is not None:
                result.previous_lease.CopyFrom(root.lease_proto)
                result.latest_known_lease.CopyFrom(root.lease_proto)
            if state.owner is not None:
                result.owner.CopyFrom(state.owner)
            if proto.epoch != state.epoch:
                result.status = LeaseUseResult.STATUS_WRONG_EPOCH
                return result
            if root is None or proto.sequence[0] > state.root_sequence:
                # Only this service issues root leases: a newer root was made up by the client.
                result.status = LeaseUseResult.STATUS_INVALID_LEASE
                return result
            attempted = Lease(proto)
            compare = attempted.compare(root)
            if compare in (Lease.CompareResult.OLDER, Lease.CompareResult.SUPER_LEASE):
                result.status = LeaseUseResult.STATUS_OLDER
                return result
            if state.owner is None or (state.stale and consumer is not None):
                result.status = LeaseUseResult.STATUS_REVOKED  # returned, or stale (holder went silent)
                return result
            if consumer is not None:
                latest = state.latest_by_consumer.get(consumer)
                if latest is not None:
                    result.previous_lease.CopyFrom(latest.lease_proto)
                    result.latest_known_lease.CopyFrom(latest.lease_proto)
                    if attempted.compare(latest) in (Lease.CompareResult.OLDER, Lease.CompareResult.SUPER_LEASE):
                        result.status = LeaseUseResult.STATUS_OLDER
                        return result
                state.latest_by_consumer[consumer] = attempted
                result.latest_known_lease.CopyFrom(proto)
            state.last_use_ns = self._clock.now_ns()
            state.stale = False  # a retain by the holder freshens a stale lease
            result.status = LeaseUseResult.STATUS_OK
            return result

    def list_resources(self) -> list[lease_pb2.LeaseResource]:
        now = self._clock.now_ns()
        resources = []
        with self._lock:
            for state in self._resources.values():
                item = lease_pb2.LeaseResource(resource=state.resource)
                if state.root is not None and state.owner is not None:
                    item.lease.CopyFrom(state.root.lease_proto)
                    item.lease_owner.CopyFrom(state.owner)
                    stale_at = state.last_use_ns + self.lease_timeout_ns
                    RobotClock.to_timestamp(stale_at, item.stale_time)
                    item.is_stale = state.stale or now > stale_at
                resources.append(item)
        return resources

    def holder(self, resource: str = BODY_RESOURCE) -> lease_pb2.LeaseOwner | None:
        with self._lock:
            state = self._resources.get(resource)
            return state.owner if state is not None else None

    def tick(self, now: int) -> None:
        """Mark leases stale whose holder went silent (called every physics step)."""
        went_stale: list[str] = []
        with self._lock:
            for state in self._resources.values():
                if state.owner is not None and not state.stale and now - state.last_use_ns > self.lease_timeout_ns:
                    _LOGGER.warning("lease on %r is stale: holder %s went silent", state.resource, state.owner.client_name)
                    state.stale = True
                    went_stale.append(state.resource)
        for resource in went_stale:
            if self._on_stale is not None:
                self._on_stale(resource)


class LeaseServicer(lease_service_pb2_grpc.LeaseServiceServicer):
    spec = ServiceSpec(LeaseClient.default_service_name, LeaseClient.service_type)

    def __init__(self, clock: RobotClock, leases: LeaseManager, tokens: TokenStore) -> None:
        self._clock = clock
        self.leases = leases
        self._tokens = tokens

    def add_to_server(self, server: grpc.Server) -> None:
        lease_service_pb2_grpc.add_LeaseServiceServicer_to_server(self, server)

    def _owner(self, request: object, context: grpc.ServicerContext) -> lease_pb2.LeaseOwner:
        return lease_pb2.LeaseOwner(
            client_name=request.header.client_name,  # type: ignore[attr-defined]
            user_name=token_subject(context, self._tokens),
        )

    def AcquireLease(self, request: lease_pb2.AcquireLeaseRequest, context: grpc.ServicerContext) -> lease_pb2.AcquireLeaseResponse:
        response = lease_pb2.AcquireLeaseResponse()
        with Reply(response, request, self._clock):
            outcome, lease, owner = self.leases.acquire(request.resource, self._owner(request, context), take=False)
            response.status = {
                "ok": lease_pb2.AcquireLeaseResponse.STATUS_OK,
                "claimed": lease_pb2.AcquireLeaseResponse.STATUS_RESOURCE_ALREADY_CLAIMED,
                "invalid": lease_pb2.AcquireLeaseResponse.STATUS_INVALID_RESOURCE,
            }[outcome]
            if lease is not None:
                response.lease.CopyFrom(lease.lease_proto)
            if owner is not None:
                response.lease_owner.CopyFrom(owner)
        return response

    def TakeLease(self, request: lease_pb2.TakeLeaseRequest, context: grpc.ServicerContext) -> lease_pb2.TakeLeaseResponse:
        response = lease_pb2.TakeLeaseResponse()
        with Reply(response, request, self._clock):
            outcome, lease, owner = self.leases.acquire(request.resource, self._owner(request, context), take=True)
            if outcome == "invalid":
                response.status = lease_pb2.TakeLeaseResponse.STATUS_INVALID_RESOURCE
            else:
                response.status = lease_pb2.TakeLeaseResponse.STATUS_OK
                assert lease is not None and owner is not None
                response.lease.CopyFrom(lease.lease_proto)
                response.lease_owner.CopyFrom(owner)
        return response

    def ReturnLease(self, request: lease_pb2.ReturnLeaseRequest, context: grpc.ServicerContext) -> lease_pb2.ReturnLeaseResponse:
        response = lease_pb2.ReturnLeaseResponse()
        with Reply(response, request, self._clock):
            response.status = self.leases.return_lease(request.lease)
        return response

    def RetainLease(self, request: lease_pb2.RetainLeaseRequest, context: grpc.ServicerContext) -> lease_pb2.RetainLeaseResponse:
        response = lease_pb2.RetainLeaseResponse()
        with Reply(response, request, self._clock):
            response.lease_use_result.CopyFrom(self.leases.check(request.lease, consumer=None))
        return response

    def ListLeases(self, request: lease_pb2.ListLeasesRequest, context: grpc.ServicerContext) -> lease_pb2.ListLeasesResponse:
        response = lease_pb2.ListLeasesResponse()
        with Reply(response, request, self._clock):
            response.resources.extend(self.leases.list_resources())
            tree = self.leases.resource_tree
            if tree:
                response.resource_tree.CopyFrom(tree[0])
        return response
