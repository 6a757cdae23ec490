"""ZeroMQ endpoint strings: which ones stay on this machine, and where the event stream is.

The agent serves requests on one port and events on the next (21000 / 21001 by default: Spot
payloads may only open ports 21000-22000). Clients learn the real event endpoint from the
`hello` reply, so an agent bound to an ephemeral port (tests) works the same way.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

DEFAULT_CONTROL_PORT = 21000
DEFAULT_CONTROL_ENDPOINT = f"tcp://127.0.0.1:{DEFAULT_CONTROL_PORT}"
DEFAULT_LIVE_VIEW_PORT = 21002

_LOOPBACK_NAMES = {"localhost", "lo", "lo0"}


class EndpointError(ValueError):
    """An endpoint string the agent cannot use (the message says why)."""


class BindError(OSError):
    """A control socket or the live view cannot be opened (port in use, address not local)."""


@dataclass(frozen=True)
class TcpEndpoint:
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


def parse_tcp(endpoint: str) -> TcpEndpoint:
    if not endpoint.startswith("tcp://"):
        raise EndpointError(f"{endpoint!r} is not a tcp:// endpoint")
    rest = endpoint[len("tcp://") :]
    host, sep, port_text = rest.rpartition(":")
    if not sep or not host:
        raise EndpointError(f"{endpoint!r} needs a host and a port, like tcp://127.0.0.1:21000")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if port_text == "*":
        port = 0
    else:
        try:
            port = int(port_text)
        except ValueError:
            raise EndpointError(f"{endpoint!r}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise EndpointError(f"{endpoint!r}: port {port} is out of range")
    return TcpEndpoint(host, port)


def check_endpoint(endpoint: str) -> None:
    """Raise `EndpointError` unless `endpoint` is a tcp://, ipc:// or inproc:// endpoint."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return
    parse_tcp(endpoint)


def is_loopback(endpoint: str) -> bool:
    """True if binding `endpoint` can only be reached from this machine.

    ipc:// and inproc:// never leave the machine; tcp:// is local only on a loopback address.
    A wildcard (`*`, 0.0.0.0), an interface name or any other address is reachable from the
    network.
    """
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    host = parse_tcp(endpoint).host
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_events_endpoint(control_endpoint: str) -> str:
    """The event stream's endpoint next to the control endpoint (port + 1)."""
    if control_endpoint.startswith(("ipc://", "inproc://")):
        return control_endpoint + ".events"
    tcp = parse_tcp(control_endpoint)
    return str(TcpEndpoint(tcp.host, tcp.port + 1 if tcp.port else 0))


def events_endpoint_for_client(control_endpoint: str, advertised_events: str) -> str:
    """Where a client connects for events, given what the agent advertised.

    The agent knows the address it *bound* (maybe 0.0.0.0); the client knows the address it
    *reached* the agent at, so the client's host and the agent's events port are combined.
    """
    if not control_endpoint.startswith("tcp://") or not advertised_events.startswith("tcp://"):
        return advertised_events
    return str(TcpEndpoint(parse_tcp(control_endpoint).host, parse_tcp(advertised_events).port))
