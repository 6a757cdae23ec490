"""The simulated Spot: one TLS gRPC server with Spot's services, a world and its cameras.

    with SimServer.start("configs/scenarios/default.yaml") as sim:
        sdk = bosdyn.client.create_standard_sdk("me", cert_resource_glob=str(sim.ca_path))
        robot = sdk.create_robot(sim.host)
        robot.update_secure_channel_port(sim.port)
        robot.authenticate("spot", "spot")

All services share one port; the SDK routes by gRPC method path and sets each service's
authority (`api.spot.robot`, `auth.spot.robot`, ...) as the TLS name, which the sim's
certificate covers. Every service except auth, robot-id and payload-registration requires a
valid user token (gRPC UNAUTHENTICATED otherwise), as on a robot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from types import TracebackType

import grpc
from bosdyn.api import data_buffer_pb2
from bosdyn.client.channel import generate_channel_options

from sim.body_state import MotorPower
from sim.cameras import CAMERAS, CameraSpec
from sim.certs import SimCertificates, ensure_certificates
from sim.robot_clock import RobotClock
from sim.scene import Scenario, default_scenario_path, load_scenario
from sim.services.auth import AuthServicer, TokenStore
from sim.services.common import ServiceSpec, SimService
from sim.services.data_buffer import DataBufferServicer
from sim.services.directory import Directory, DirectoryServicer
from sim.services.directory_registration import DirectoryRegistrationServicer
from sim.services.estop import EstopServicer, EstopSystem
from sim.services.fault import FaultServicer, ServiceFaults
from sim.services.frames import SnapshotBuilder
from sim.services.image import ImageServicer, stereo_depth_cameras
from sim.services.lease import LeaseManager, LeaseServicer
from sim.services.license import LicenseServicer
from sim.services.local_grid import LocalGridServicer
from sim.services.network_compute_bridge import NetworkComputeBridgeServicer
from sim.services.payload import PayloadApproval, PayloadRegistry, PayloadServicer
from sim.services.payload_registration import PayloadRegistrationServicer
from sim.services.power import PowerServicer
from sim.services.robot_command import RobotCommandServicer
from sim.services.robot_id import SERIAL_NUMBER, RobotIdServicer
from sim.services.robot_state import RobotStateBuilder, RobotStateServicer, StateSection
from sim.services.time_sync import TimeSyncServicer
from sim.services.world_object import WorldObjectServicer
from sim.world import SimWorld

_LOGGER = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 44443  # a real robot listens on 443; an unprivileged port needs no root
DEFAULT_USER = "spot"
DEFAULT_PASSWORD = "spot"
DEFAULT_PAYLOAD_GUID = "3f7c2d1e-5a4b-4c3d-9e8f-0a1b2c3d4e5f"
DEFAULT_PAYLOAD_SECRET = "spot-sim-payload-secret"
# The robot clock runs this far ahead of the host's: clients that skip time sync for end times
# get STATUS_EXPIRED, as they would from a robot whose clock differs from theirs.
DEFAULT_CLOCK_OFFSET_S = 1.5
DEFAULT_WORKERS = 48


class _AuthInterceptor(grpc.ServerInterceptor):
    """Rejects RPCs without a valid `authorization: Bearer <token>` (except the open services),
    and every RPC while the network is cut (`SimServer.cut_network`)."""

    def __init__(self, tokens: TokenStore, open_services: set[str], network_cut: Callable[[], bool]) -> None:
        self._tokens = tokens
        self._open_services = open_services
        self._network_cut = network_cut

        def deny(request: bytes, context: grpc.ServicerContext) -> None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "401 Unauthorized: missing or invalid user token")

        def unreachable(request: bytes, context: grpc.ServicerContext) -> None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "network cut (sim)")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)
        self._unreachable = grpc.unary_unary_rpc_method_handler(unreachable)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if self._network_cut():
            return self._unreachable
        service = handler_call_details.method[1:].split("/", 1)[0]
        if service in self._open_services:
            return continuation(handler_call_details)
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                if self._tokens.is_valid(value[7:]):
                    return continuation(handler_call_details)
                break
        return self._deny


def _resolve_scenario(scenario: str | Path | Scenario | None) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    return load_scenario(default_scenario_path() if scenario is None else scenario)


def _bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class SimServer:
    """A running simulated robot. Create with `SimServer.start(...)`; stop with `stop()` or `with`."""

    host: str
    port: int
    ca_path: Path
    world: SimWorld
    scenario: Scenario

    def __init__(
        self,
        scenario: Scenario,
        host: str,
        certificates: SimCertificates,
        clock: RobotClock,
        camera_rate_hz: float,
        user: str,
        password: str,
        payloads: dict[str, str],
        lease_timeout_s: float,
        physics_hz: float,
        max_workers: int,
        cameras: dict[str, CameraSpec],
        payload_approval: PayloadApproval = "automatic",
    ) -> None:
        self.scenario = scenario
        self.host = host
        self.certificates = certificates
        self.ca_path = certificates.ca_path
        self.clock = clock
        self.user = user
        self.password = password
        self.payloads = dict(payloads)
        self.world = SimWorld(scenario, clock, physics_hz=physics_hz)

        self.tokens = TokenStore(issuer=SERIAL_NUMBER)
        self.estop = EstopSystem(clock, motors_on=lambda: self.world.snapshot().motor_power != MotorPower.OFF)
        self.leases = LeaseManager(clock, lease_timeout_s, on_stale=lambda _resource: self.world.on_comms_loss())
        self.world.set_estop_level_source(self.estop.level)
        self.world.add_tick_hook(self.leases.tick)

        snapshots = SnapshotBuilder([*cameras.values(), *stereo_depth_cameras(cameras).values()])
        self.payload_registry, self.service_faults = PayloadRegistry(self.payloads, payload_approval), ServiceFaults(clock)
        services = self._services(clock, scenario, cameras, snapshots, camera_rate_hz, user, password)
        self.service_specs: list[ServiceSpec] = [s.spec for s in services]
        open_services = {spec.type for spec in self.service_specs if not spec.user_token_required}

        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sim-rpc"),
            interceptors=[_AuthInterceptor(self.tokens, open_services, lambda: self._network_cut)],
            # No SO_REUSEPORT: a second sim on the same port must fail, not share connections.
            options=[*generate_channel_options(), ("grpc.so_reuseport", 0)],
        )
        for service in services:
            service.add_to_server(self._server)
        self._credentials = grpc.ssl_server_credentials([(certificates.server_key_pem, certificates.server_cert_pem)])
        self.port = 0
        self._stopped = False
        self._network_cut = False
        # What `restart` needs to start the same robot again.
        self._camera_rate_hz, self._lease_timeout_s, self._physics_hz = camera_rate_hz, lease_timeout_s, physics_hz
        self._max_workers, self._cameras, self._payload_approval = max_workers, cameras, payload_approval

    def _services(
        self,
        clock: RobotClock,
        scenario: Scenario,
        cameras: dict[str, CameraSpec],
        snapshots: SnapshotBuilder,
        camera_rate_hz: float,
        user: str,
        password: str,
    ) -> list[SimService]:
        """Every service the sim serves, the directory's own last (it lists the others)."""
        self.directory = Directory(clock)
        state_sections: list[StateSection] = [self.service_faults, self.directory]  # liveness faults
        self.time_sync = TimeSyncServicer(clock)
        self.image = ImageServicer(clock, self.world, scenario, cameras, snapshots, camera_rate_hz)
        self.data_buffer = DataBufferServicer(clock)
        services: list[SimService] = [
            AuthServicer(clock, self.tokens, user, password),
            PayloadRegistrationServicer(clock, self.tokens, self.payload_registry),
            RobotIdServicer(clock),
            self.time_sync,
            EstopServicer(clock, self.estop),
            LeaseServicer(clock, self.leases, self.tokens),
            PowerServicer(clock, self.world, self.leases, self.estop),
            RobotStateServicer(clock, RobotStateBuilder(self.world, self.estop, snapshots, state_sections), self.world),
            RobotCommandServicer(clock, self.world, self.leases, self.time_sync, self.estop.level),
            self.image,
            WorldObjectServicer(clock, self.world, scenario, cameras, snapshots, refresh_hz=camera_rate_hz),
            self.data_buffer,
            LicenseServicer(clock, SERIAL_NUMBER),
            PayloadServicer(clock, self.payload_registry),
            FaultServicer(clock, self.service_faults, self.tokens),
            LocalGridServicer(clock, self.world, scenario, snapshots),
        ]
        registry_services = (DirectoryServicer, DirectoryRegistrationServicer, NetworkComputeBridgeServicer)
        self.directory.add_builtin([*(s.spec for s in services), *(s.spec for s in registry_services)])
        self.bridge = NetworkComputeBridgeServicer(clock, self.directory, self.image)
        services += [DirectoryServicer(clock, self.directory), DirectoryRegistrationServicer(clock, self.directory, self.tokens), self.bridge]
        return services

    @classmethod
    def start(
        cls,
        scenario: str | Path | Scenario | None = None,
        host: str = DEFAULT_HOST,
        port: int = 0,
        camera_rate_hz: float = 15.0,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        payloads: dict[str, str] | None = None,
        clock_offset_s: float = DEFAULT_CLOCK_OFFSET_S,
        lease_timeout_s: float = 10.0,
        physics_hz: float = 50.0,
        max_workers: int = DEFAULT_WORKERS,
        cert_dir: str | Path | None = None,
        cameras: dict[str, CameraSpec] | None = None,
        payload_approval: PayloadApproval = "automatic",
    ) -> SimServer:
        """Start a simulated robot and return it running.

        scenario: a Scenario, a scenario YAML path, or None for configs/scenarios/default.yaml
        (an empty world if that file is missing). port=0 picks a free port (see `.port`).
        payloads: {guid: secret} accepted by payload-registration (default: one known payload).
        payload_approval: "manual" keeps newly registered payloads unauthorized until
        `approve_payload(guid)` (default "automatic": authorized at once).
        """
        server = cls(
            scenario=_resolve_scenario(scenario),
            host=host,
            certificates=ensure_certificates(cert_dir),
            clock=RobotClock(clock_offset_s),
            camera_rate_hz=camera_rate_hz,
            user=user,
            password=password,
            payloads=payloads if payloads is not None else {DEFAULT_PAYLOAD_GUID: DEFAULT_PAYLOAD_SECRET},
            lease_timeout_s=lease_timeout_s,
            physics_hz=physics_hz,
            max_workers=max_workers,
            cameras=cameras if cameras is not None else CAMERAS,
            payload_approval=payload_approval,
        )
        server._start(port)
        return server

    def _start(self, port: int) -> None:
        address = _bind_address(self.host, port)
        try:
            bound = self._server.add_secure_port(address, self._credentials)
        except RuntimeError as exc:  # grpc raises when it cannot bind
            raise OSError(f"cannot listen on {address}: {exc}") from exc
        if bound == 0:
            raise OSError(f"cannot listen on {address} (port in use or host not local?)")
        self.port = bound
        self.world.start()
        self._server.start()
        _LOGGER.info("simulated Spot listening on %s:%d", self.host, self.port)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def operator_comments(self) -> list[data_buffer_pb2.OperatorComment]:
        return self.data_buffer.operator_comments

    def stall_images(self, stalled: bool) -> None:
        """Image RPCs hang (until un-stalled or their deadline) while `stalled` is True."""
        self.image.stall(stalled)

    def approve_payload(self, guid: str) -> bool:
        """Authorize a registered payload, as a robot's admin does (False: no payload with that GUID)."""
        return self.payload_registry.approve(guid)

    def cut_network(self, cut: bool) -> None:
        """While `cut`, every RPC fails with UNAVAILABLE (the robot is out of reach; it keeps
        running: leases go stale and E-Stop endpoints time out as on a robot)."""
        self._network_cut = cut

    def restart(self) -> SimServer:
        """Stop this robot and boot a fresh one on the same port, as a rebooted robot: same
        scenario, clock, login and certificates; new tokens, lease epoch, E-Stop configuration,
        time-sync sessions; motors off, sitting at the scenario's start. Returns the new one."""
        port = self.port
        self.stop()
        server = SimServer(
            scenario=self.scenario, host=self.host, certificates=self.certificates, clock=self.clock,
            camera_rate_hz=self._camera_rate_hz, user=self.user, password=self.password,
            payloads=self.payloads, lease_timeout_s=self._lease_timeout_s, physics_hz=self._physics_hz,
            max_workers=self._max_workers, cameras=self._cameras, payload_approval=self._payload_approval,
        )
        server._start(port)
        return server

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.image.close()
        self._server.stop(grace=0.5).wait(timeout=5.0)
        self.bridge.close()
        self.world.stop()

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._server.wait_for_termination(timeout)

    def __enter__(self) -> SimServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
