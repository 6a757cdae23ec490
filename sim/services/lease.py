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

Resources form Spot's tree: `body` over `mobility` (the legs; an armless robot has no `arm`,
`gripper` or `full-arm`). Holding `body` covers `mobility`; `mobility` can be acquired alone
(when `body` is free) and then drives the legs (robot commands) but not the whole robot (power
commands need `body`: a `mobility` lease there is STATUS_INVALID_LEASE). Because `mobility` is
the only leaf, one root sequence serves both names: a lease for either is compared with the
other by its sequence, as the robot compares leases split from one another.
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
MOBILITY_RESOURCE = "mobility"
RESOURCES = (BODY_RESOURCE, MOBILITY_RESOURCE)
LeaseUseResult: TypeAlias = lease_pb2.LeaseUseResult


@dataclass
class _LegsLease:
    """Who holds the legs (the tree's one leaf), through which resource, and how fresh."""

    epoch: str
    root_sequence: int = 0
    root: Lease | None = None  # the lease the service issued last (resource body or mobility)
    owner: lease_pb2.LeaseOwner | None = None  # None: nobody holds it (never acquired, or returned)
    last_use_ns: int = 0
    stale: bool = False  # the holder went silent (see module doc)
    # Newest lease each consuming service has seen (sub-leases advance per command).
    latest_by_consumer: dict[str, Lease] = field(default_factory=dict)


def as_resource(lease: Lease | lease_pb2.Lease, resource: str) -> Lease:
    """The same lease (sequence, epoch) named for `resource`, to compare across the tree."""
    proto = lease_pb2.Lease()
    proto.CopyFrom(lease.lease_proto if isinstance(lease, Lease) else lease)
    proto.resource = resource
    return Lease(proto)


def token_subject(context: grpc.ServicerContext, tokens: TokenStore) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return tokens.subject(value[len("Bearer "):]) or ""
    return ""


class LeaseManager:
    """Root leases, staleness, and checking of leases presented to other services."""

    def __init__(
        self, clock: RobotClock, lease_timeout_s: float = 10.0, on_stale: Callable[[str], None] | None = None
    ) -> None:
        self._clock = clock
        self.lease_timeout_ns = int(lease_timeout_s * NSEC_PER_SEC)
        self._on_stale = on_stale
        self._lock = threading.Lock()
        self._legs = _LegsLease(secrets.token_hex(8))

    @property
    def resource_tree(self) -> lease_pb2.ResourceTree:
        return lease_pb2.ResourceTree(
            resource=BODY_RESOURCE, sub_resources=[lease_pb2.ResourceTree(resource=MOBILITY_RESOURCE)]
        )

    # -- issuing
    def acquire(self, resource: str, owner: lease_pb2.LeaseOwner, take: bool) -> tuple[str, Lease | None, lease_pb2.LeaseOwner | None]:
        """Returns ("ok" | "claimed" | "invalid", lease, owner)."""
        if resource not in RESOURCES:
            return "invalid", None, None
        with self._lock:
            state = self._legs
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
        if proto.resource not in RESOURCES:
            return Status.STATUS_INVALID_RESOURCE
        with self._lock:
            state = self._legs
            if state.root is None or state.owner is None or not Lease.is_valid_proto(proto):
                return Status.STATUS_NOT_ACTIVE_LEASE
            compare = as_resource(proto, state.root.lease_proto.resource).compare(state.root)
            if compare not in (Lease.CompareResult.SAME, Lease.CompareResult.SUB_LEASE):
                return Status.STATUS_NOT_ACTIVE_LEASE
            state.owner = None
            return Status.STATUS_OK

    # -- checking
    def check(self, proto: lease_pb2.Lease, consumer: str | None, needs: str = BODY_RESOURCE) -> LeaseUseResult:
        """Check a lease presented to `consumer` (a service name; None = the lease service itself)
        for an operation that needs the resource `needs` (`body`, or `mobility` for the legs).

        A successful check counts as the holder being alive (like RetainLease).
        """
        result = LeaseUseResult()
        result.attempted_lease.CopyFrom(proto)
        if not Lease.is_valid_proto(proto):
            result.status = LeaseUseResult.STATUS_INVALID_LEASE
            return result
        if proto.resource not in RESOURCES:
            result.status = LeaseUseResult.STATUS_UNMANAGED
            return result
        with self._lock:
            result.status = self._check_locked(proto, consumer, needs, result)
            return result

    def _check_locked(self, proto: lease_pb2.Lease, consumer: str | None, needs: str, result: LeaseUseResult) -> int:
        state = self._legs
        root = state.root
        if root is not None:
            result.previous_lease.CopyFrom(root.lease_proto)
            result.latest_known_lease.CopyFrom(root.lease_proto)
        if state.owner is not None:
            result.owner.CopyFrom(state.owner)
        if proto.epoch != state.epoch:
            return LeaseUseResult.STATUS_WRONG_EPOCH
        if root is None or proto.sequence[0] > state.root_sequence:
            return LeaseUseResult.STATUS_INVALID_LEASE  # only this service issues root leases
        if consumer is not None and needs == BODY_RESOURCE and proto.resource != BODY_RESOURCE:
            return LeaseUseResult.STATUS_INVALID_LEASE  # a mobility lease does not cover the body
        attempted = as_resource(proto, root.lease_proto.resource)
        if attempted.compare(root) in (Lease.CompareResult.OLDER, Lease.CompareResult.SUPER_LEASE):
            return LeaseUseResult.STATUS_OLDER
        if state.owner is None or (state.stale and consumer is not None):
            return LeaseUseResult.STATUS_REVOKED  # returned, or stale (holder went silent)
        if consumer is not None:
            latest = state.latest_by_consumer.get(consumer)
            if latest is not None:
                result.previous_lease.CopyFrom(latest.lease_proto)
                result.latest_known_lease.CopyFrom(latest.lease_proto)
                if attempted.compare(latest) in (Lease.CompareResult.OLDER, Lease.CompareResult.SUPER_LEASE):
                    return LeaseUseResult.STATUS_OLDER
            state.latest_by_consumer[consumer] = attempted
            result.latest_known_lease.CopyFrom(proto)
        state.last_use_ns = self._clock.now_ns()
        state.stale = False  # a retain by the holder freshens a stale lease
        return LeaseUseResult.STATUS_OK

    def list_resources(self) -> list[lease_pb2.LeaseResource]:
        """`body` and `mobility`; a holder of `body` holds both, a holder of `mobility` only it."""
        now = self._clock.now_ns()
        resources = []
        with self._lock:
            state = self._legs
            for name in RESOURCES:
                item = lease_pb2.LeaseResource(resource=name)
                root = state.root
                # The body's holder holds the legs too; the legs' holder does not hold the body.
                if root is not None and state.owner is not None and name in (MOBILITY_RESOURCE, root.lease_proto.resource):
                    item.lease.CopyFrom(as_resource(root, name).lease_proto)
                    item.lease_owner.CopyFrom(state.owner)
                    stale_at = state.last_use_ns + self.lease_timeout_ns
                    RobotClock.to_timestamp(stale_at, item.stale_time)
                    item.is_stale = state.stale or now > stale_at
                resources.append(item)
        return resources

    def holder(self, resource: str = BODY_RESOURCE) -> lease_pb2.LeaseOwner | None:
        """Who holds `resource` (a holder of `mobility` alone does not hold `body`)."""
        with self._lock:
            state = self._legs
            if state.root is None or (resource == BODY_RESOURCE and state.root.lease_proto.resource != BODY_RESOURCE):
                return None
            return state.owner if resource in RESOURCES else None

    def tick(self, now: int) -> None:
        """Mark the lease stale when its holder went silent (called every physics step)."""
        with self._lock:
            state = self._legs
            went_stale = state.owner is not None and not state.stale and now - state.last_use_ns > self.lease_timeout_ns
            if went_stale:
                assert state.owner is not None and state.root is not None
                _LOGGER.warning("lease is stale: holder %s went silent", state.owner.client_name)
                state.stale = True
                resource = state.root.lease_proto.resource
        if went_stale and self._on_stale is not None:
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
            response.resource_tree.CopyFrom(self.leases.resource_tree)
        return response
