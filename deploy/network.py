"""How the agent's container is reached on CORE I/O: network mode, published ports, config.

Facts this checks against, and where they come from (Spot SDK 5.1):
- Boston Dynamics' extension template, `python/examples/extensions/docker-compose.yml`, sets
  `network_mode: "bridge"` ("We explicitly recommend against using host") and maps each
  service port to the same port outside and inside.
- "Running Custom Applications with Spot" (`docs/payload/docker_containers.md`, "Ports For
  Incoming Traffic"): CORE I/O's firewall lets incoming TCP and UDP in on 21000-22000 only,
  and keeps TCP 21443 for itself. The same page runs containers with host networking, so host
  mode stays accepted.
- The SDK's bridge-mode CORE I/O examples (`service_customization/custom_parameter_image_server`,
  `metrics_over_coreio`, `remote_mission_service/spot_check`) reach the robot at 192.168.50.3
  with no `extra_hosts` or other setting: Docker's NAT carries a bridge container's outgoing
  connections through the CORE I/O, and the agent names the robot by address, not by name.

A port must be published as itself (`21500:21500`) for a second reason of our own: an operator's
client connects for events to the address it dialled with the events port the agent reports
(agent/control/endpoints.py `events_endpoint_for_client`), so a remapped port breaks `watch`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from agent.config import AgentConfig
from agent.control.endpoints import TcpEndpoint, default_events_endpoint, is_loopback, parse_tcp

# Incoming ports a CORE I/O's firewall lets through (TCP and UDP), less one it keeps for itself.
PAYLOAD_PORT_RANGE = range(21000, 22001)
PAYLOAD_RESERVED_PORTS = frozenset({21443})

BRIDGE = "bridge"
HOST = "host"
# The agent config the image runs when the compose file gives no `command:` (deploy/Dockerfile's
# CMD: the shipped configs/payload.yaml).
IMAGE_DEFAULT_CONFIG = "payload"


@dataclass(frozen=True)
class ListeningPort:
    """A TCP port the agent binds, and the config setting that makes it."""

    setting: str  # e.g. "control.endpoint"
    host: str
    port: int


@dataclass(frozen=True)
class PublishedPort:
    """One container port a compose `ports:` entry publishes."""

    entry: str  # the entry as written, for messages
    published: int | None  # None: Docker picks a host port
    target: int
    protocol: str


def listening_ports(config: AgentConfig) -> list[ListeningPort]:
    """Every port the agent accepts connections on with `config` (none if control is off)."""
    control = config.control
    if not control.enabled:
        return []
    found = []
    events = control.events_endpoint or default_events_endpoint(control.endpoint)
    for setting, endpoint in (("control.endpoint", control.endpoint),
                              ("control.events_endpoint", events)):  # fmt: skip
        if endpoint.startswith("tcp://"):
            tcp = parse_tcp(endpoint)
            found.append(ListeningPort(setting, tcp.host, tcp.port))
    if control.live_view.enabled:
        found.append(ListeningPort("control.live_view.port", control.live_view.host,
                                   control.live_view.port))  # fmt: skip
    return found


def config_the_container_runs(service: dict[str, Any]) -> str:
    """The `--config` the service's `command:` gives the agent, else the image's default."""
    command = service.get("command")
    argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command or []]
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config="):
            return arg.removeprefix("--config=")
    return IMAGE_DEFAULT_CONFIG


def _port_range(text: str) -> list[int]:
    first, sep, last = text.partition("-")
    low = int(first)
    high = int(last) if sep else low
    if not 0 < low <= high <= 65535:
        raise ValueError
    return list(range(low, high + 1))


def parse_port_entry(entry: Any) -> list[PublishedPort]:
    """The ports one compose `ports:` entry publishes; `ValueError` saying why if unreadable.

    Short syntax `[HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTOCOL]` or long syntax
    (`target`, `published`, `protocol`, `host_ip`), as the Compose file reference defines them.
    """
    try:
        if isinstance(entry, dict):
            written = str(dict(entry))
            targets = _port_range(str(entry["target"]))
            published_text = str(entry.get("published") or "")
            protocol = str(entry.get("protocol", "tcp"))
        else:
            written = str(entry)
            ports, _, protocol = written.partition("/")
            protocol = protocol or "tcp"
            parts = ports.rsplit(":", 2)
            targets = _port_range(parts[-1])
            published_text = parts[-2] if len(parts) > 1 else ""
        published = _port_range(published_text) if published_text else [None] * len(targets)
    except (KeyError, ValueError):
        raise ValueError(f"ports entry {entry!r} is not a port mapping Compose reads") from None
    if len(published) != len(targets):
        raise ValueError(f"ports entry {written!r} maps ranges of different lengths")
    return [PublishedPort(written, p, t, protocol) for p, t in zip(published, targets)]


def _firewall_problem(port: int) -> str | None:
    if port not in PAYLOAD_PORT_RANGE:
        return "outside 21000-22000, where CORE I/O's firewall drops incoming connections"
    if port in PAYLOAD_RESERVED_PORTS:
        return "21443, which CORE I/O keeps for itself"
    return None


def _listening_problems(where: str, mode: str, ports: list[ListeningPort]) -> list[str]:
    problems = []
    for lp in ports:
        if lp.port == 0:
            problems.append(f"{where}: the agent config's {lp.setting} asks for any free port "
                            "(0): operators could not know where to connect")  # fmt: skip
            continue
        firewall = _firewall_problem(lp.port)
        if firewall:
            problems.append(f"{where}: the agent config's {lp.setting} is port {lp.port}, {firewall}")
        if mode == BRIDGE and is_loopback(str(TcpEndpoint(lp.host, lp.port))):
            problems.append(
                f"{where}: the agent config's {lp.setting} binds {lp.host}, which a published port "
                "cannot reach in bridge mode: bind 0.0.0.0"
            )
    return problems


def _bridge_port_problems(where: str, entries: list[Any], ports: list[ListeningPort]) -> list[str]:
    problems = []
    published: dict[int, PublishedPort] = {}
    for entry in entries:
        try:
            mapped = parse_port_entry(entry)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        for pp in mapped:
            if pp.protocol != "tcp":
                problems.append(f"{where}: ports {pp.entry!r} is {pp.protocol}; the agent's "
                                "operator ports are TCP")  # fmt: skip
            elif pp.published != pp.target:
                shown = "a random port" if pp.published is None else f"port {pp.published}"
                problems.append(
                    f"{where}: ports {pp.entry!r} publishes container port {pp.target} as "
                    f"{shown}: publish it as itself ('{pp.target}:{pp.target}'), as Boston "
                    "Dynamics' extension template does"
                )
            elif firewall := _firewall_problem(pp.target):
                problems.append(f"{where}: ports {pp.entry!r} publishes {pp.target}, {firewall}")
            published[pp.target] = pp
    wanted = {lp.port: lp for lp in ports if lp.port}
    for port, lp in sorted(wanted.items()):
        if port not in published:
            problems.append(
                f"{where}: the agent config's {lp.setting} listens on {port} but ports does not "
                f"publish it: add '{port}:{port}'"
            )
    for port, pp in sorted(published.items()):
        if port not in wanted:
            problems.append(
                f"{where}: ports {pp.entry!r} publishes {port}, which the agent config does not "
                f"listen on (it listens on {sorted(wanted) or 'nothing'})"
            )
    return problems


def network_problems(where: str, service: dict[str, Any], ports: list[ListeningPort]) -> list[str]:
    """What keeps operators from reaching the agent's `ports` through this compose service.

    Bridge networking (the default when `network_mode` is absent: Compose's own network is a
    bridge) must publish exactly the agent's ports, each as itself; host networking publishes
    nothing. Either way the ports must be ones CORE I/O's firewall lets in.
    """
    mode = service.get("network_mode", BRIDGE)
    if mode not in (BRIDGE, HOST):
        return [
            f"{where}: network_mode must be {BRIDGE} (with the operator ports published, as "
            f"Boston Dynamics' extension template recommends) or {HOST} (got {mode!r})"
        ]
    problems = _listening_problems(where, mode, ports)
    entries = service.get("ports") or []
    if not isinstance(entries, list):
        return [*problems, f"{where}: ports must be a list"]
    if mode == HOST:
        if entries:
            problems.append(f"{where}: ports has no effect with network_mode host (remove {entries})")
    else:
        problems += _bridge_port_problems(where, entries, ports)
    return problems
