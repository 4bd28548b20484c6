"""Loopback ports for tests: never fixed ones, since other test runs share the machine."""

from __future__ import annotations

import socket


def free_socket(port: int = 0) -> socket.socket:
    """A bound (not yet listening) socket on 127.0.0.1; port 0 picks a free one. Hand it to a server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def free_port() -> int:
    """A port nothing listens on right now (bound, then released): for a subprocess to take."""
    with free_socket() as sock:
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    try:
        free_socket(port).close()
    except OSError:
        return False
    return True
