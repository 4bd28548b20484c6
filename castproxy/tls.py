"""The one TLS context castproxy's outbound httpx2 clients share.

Building a context loads the system CA bundle: about 17 ms of CPU each time, which every client paid
on every reload (a bridge, a document fetcher, a spec fetch, one per OAuth workspace). One context is
safe to share between clients and threads. It honours SSL_CERT_FILE / SSL_CERT_DIR, so an operator's
private CA reaches every client alike.
"""

from __future__ import annotations

import functools
import ssl

import httpx2

__all__ = ["outbound_tls"]


@functools.cache
def outbound_tls() -> ssl.SSLContext:
    return httpx2.create_ssl_context()
