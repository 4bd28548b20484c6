"""Which browser origins may call /mcp: loopback, the public URL's origin and `server.allowed_origins`.

A request without an `Origin` header is not from a browser page and passes; a page on any other
origin is refused, which blocks DNS-rebinding and cross-site calls to a local proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["OriginPolicy", "normalize_origin"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str) -> str | None:
    """`scheme://host[:port]` in lower case with the default port dropped; None if not an http(s) origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _is_loopback(origin: str) -> bool:
    host = urlsplit(origin).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    allowed: frozenset[str]

    @classmethod
    def from_settings(cls, public_url: str, extra: Iterable[str]) -> OriginPolicy:
        origins = {normalize_origin(public_url), *(normalize_origin(o) for o in extra)}
        return cls(frozenset(o for o in origins if o))

    def allows(self, origin: str | None) -> bool:
        if origin is None:
            return True
        normalized = normalize_origin(origin)
        if normalized is None:  # "null" (sandboxed frames, file://) or garbage
            return False
        return normalized in self.allowed or _is_loopback(normalized)
