"""HTTP for tests without building a TLS context per request.

`httpx2.get()` and every new client load the system CA bundle (about 17 ms of CPU); polling loops and
per-test clients paid that thousands of times a run. `TLS` is castproxy's own shared context; the
one-shot client keeps no connections open between requests, like `httpx2.get()`.
"""

from __future__ import annotations

from typing import Any

import httpx2

from castproxy.tls import outbound_tls

TLS = outbound_tls()
_ONE_SHOT = httpx2.Client(verify=TLS, limits=httpx2.Limits(max_keepalive_connections=0))


def get(url: str, **options: Any) -> httpx2.Response:
    return _ONE_SHOT.get(url, **options)


def post(url: str, **options: Any) -> httpx2.Response:
    return _ONE_SHOT.post(url, **options)
