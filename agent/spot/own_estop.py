"""The agent's own E-Stop endpoint (`robot.register_estop`: benches and the sim only).

Registering replaces the robot's E-Stop configuration with one endpoint, the agent's, which
must then check in (every timeout / 3) or the robot sits and cuts motor power. So the agent is
an E-Stop client like the tablet's: while anyone drives the robot on that configuration, the
agent must keep checking in. At the end it gives the robot back the configuration it found,
which the robot allows only with the motors off (`SetEstopConfig` answers STATUS_MOTORS_ON
otherwise, and so does `DeregisterEstopEndpoint`).
"""

from __future__ import annotations

import logging

from bosdyn.api import estop_pb2
from bosdyn.client.estop import EstopClient, EstopEndpoint, EstopKeepAlive, MotorsOnError
from bosdyn.client.exceptions import Error as SdkError

from agent.spot.config import RobotConfig

log = logging.getLogger(__name__)


class OwnEstop:
    """Register, keep checking in, forget (after a robot restart), hand back."""

    def __init__(self, client: EstopClient, config: RobotConfig) -> None:
        self.client = client
        self.config = config
        self.endpoint: EstopEndpoint | None = None
        self._keepalive: EstopKeepAlive | None = None
        self._found: estop_pb2.EstopConfig | None = None  # the configuration before ours

    def register(self) -> None:
        """Replace the robot's E-Stop configuration with this endpoint and check in."""
        self._found = self.client.get_config(timeout=self.config.rpc_timeout_s)
        self.endpoint = EstopEndpoint(self.client, self.config.client_name, self.config.estop_timeout_s)
        self.endpoint.force_simple_setup()
        self._keepalive = EstopKeepAlive(self.endpoint)
        log.info("own E-Stop endpoint registered", extra={"event": "estop_registered"})

    def checking_in(self) -> bool:
        """Whether check-ins run (they stop by themselves when the robot forgot the endpoint)."""
        keepalive = self._keepalive
        return keepalive is not None and keepalive._thread.is_alive()  # no public accessor

    def forget(self) -> None:
        """Stop checking in without touching the robot: after a restart it no longer knows us."""
        if self._keepalive is not None:
            self._keepalive.shutdown()
            self._keepalive = None
        self._found = None

    def hand_back(self) -> bool:
        """Give the robot back the configuration found at registration and stop checking in.

        False while the motors are on (the robot refuses; the endpoint keeps checking in, as
        stopping would cut power): call again once they are off.
        """
        if self._keepalive is None:
            return True
        if self._found is not None:
            try:
                current = self.client.get_config(timeout=self.config.rpc_timeout_s)
                self.client.set_config(self._found, current.unique_id, timeout=self.config.rpc_timeout_s)
            except MotorsOnError:
                return False
            except SdkError as exc:
                log.warning("could not restore the robot's E-Stop configuration",
                            extra={"event": "estop_restore_failed", "error": str(exc)})
            else:
                log.info("E-Stop configuration restored (the agent's endpoint removed)",
                         extra={"event": "estop_restored"})
        self.forget()
        return True
