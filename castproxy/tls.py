"""The one TLS context castproxy's outbound httpx2 clients share (why: docs/architecture.md, "Module notes")."""

from __future__ import annotations

import functools
import ssl

import httpx2

__all__ = ["outbound_tls"]


@functools.cache
def outbound_tls() -> ssl.SSLContext:
    return httpx2.create_ssl_context()  # honours SSL_CERT_FILE / SSL_CERT_DIR, as the tool-call path does
