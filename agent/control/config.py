"""Settings of the operator control socket and the Foxglove live view (`control:` in
configs/agent.yaml; each runs without the other), validated like every other config: unknown
keys are errors, and a network bind without CurveZMQ keys is refused when the file is loaded,
not when an operator connects."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from agent.control.endpoints import (
    DEFAULT_CONTROL_ENDPOINT,
    DEFAULT_LIVE_VIEW_PORT,
    EndpointError,
    check_endpoint,
    is_loopback,
)
from configs.loading import ConfigPath, StrictModel


class LiveViewConfig(StrictModel):

    enabled: bool = Field(
        False,
        description="Serve the Foxglove live view (WebSocket), with or without the control "
        "socket. Viewers: Foxglove (protocol foxglove.sdk.v1 or foxglove.websocket.v1), "
        "Lichtblick, @foxglove/ws-protocol clients.",
    )
    host: str = Field(
        "127.0.0.1",
        description="Address to serve on. The Foxglove protocol has no authentication: on a "
        "network address anyone who reaches the port can watch (never command) the robot.",
    )
    port: int = Field(
        DEFAULT_LIVE_VIEW_PORT,
        description="WebSocket port: 21000-22000 on a Spot payload (0 = any free port, tests).",
    )
    max_hz: float = Field(5.0, gt=0, le=30, description="Most frames per camera per second sent.")

    @field_validator("port")
    @classmethod
    def _payload_port(cls, value: int) -> int:
        if value != 0 and not 21000 <= value <= 22000:
            raise ValueError("a Spot payload may only open ports 21000-22000 (or 0 for any free port)")
        return value


class ControlConfig(StrictModel):

    enabled: bool = Field(False, description="Serve operator control (requests and events).")
    endpoint: str = Field(
        DEFAULT_CONTROL_ENDPOINT,
        description="Control socket. Loopback by default; any other address needs curve_keys_dir.",
    )
    events_endpoint: str | None = Field(
        None, description="Event stream socket; default: the control port + 1."
    )
    curve_keys_dir: ConfigPath | None = Field(
        None,
        description="Directory with server.key_secret and authorized/*.key (operators' public "
        "keys). Turns on CurveZMQ encryption and authentication.",
    )
    handler_timeout_s: float = Field(5.0, gt=0, description="Longest a request may take.")
    health_interval_s: float = Field(1.0, gt=0, description="Period of `health` events.")
    live_view: LiveViewConfig = Field(default_factory=LiveViewConfig)

    @field_validator("endpoint", "events_endpoint")
    @classmethod
    def _endpoint_shape(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_endpoint(value)
            except EndpointError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _network_needs_keys(self) -> ControlConfig:
        if self.curve_keys_dir is None:
            for endpoint in (self.endpoint, self.events_endpoint):
                if endpoint is not None and not is_loopback(endpoint):
                    raise ValueError(
                        f"{endpoint} is reachable from the network: set curve_keys_dir (make "
                        "keys with `spot-agent keys`) or bind to 127.0.0.1"
                    )
        return self
