"""Free local ports for tests that serve something (control sockets, the live view)."""

from __future__ import annotations

import socket


def free_port_pair() -> int:
    """A port p with p and p + 1 free (control and events)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair")


def free_payload_port(first: int = 21500) -> int:
    """A free port in `first`-22000 (the ports a Spot payload may open)."""
    for port in range(first, 22000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-22000")
