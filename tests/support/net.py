"""Loopback ports for tests: never fixed ones, since other test runs share the machine."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def _below_ephemeral() -> range:
    """Ports under the kernel's ephemeral range: no outgoing connection is ever given one of these."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    return range(min(20000, low // 2), low)


def free_socket(port: int = 0) -> socket.socket:
    """A bound (not yet listening) socket on 127.0.0.1; port 0 picks a free one. Hand it to a server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def free_port() -> int:
    """A port nothing listens on right now, for a subprocess to take. Picked below the ephemeral range:
    a port 0 pick comes from that range, where another test's outgoing connection could take it
    before the subprocess binds it (seen as "port in use" under xdist)."""
    for port in random.sample(_below_ephemeral(), 50):
        if port_is_free(port):
            return port
    with free_socket() as sock:
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    try:
        free_socket(port).close()
    except OSError:
        return False
    return True
