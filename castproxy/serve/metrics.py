"""GET /metrics: the Prometheus exposition of castproxy.observe's metrics (prometheus_client's own encoder).

Before each scrape the observer brings in what is counted elsewhere (audit records dropped, sign-ins
in the store, at most every 15 s). Any check on who may scrape belongs in this endpoint (server.metrics_token:
app.py wraps it). Under `serve --workers N` any worker answers the sum of all (prometheus_client's
multiprocess mode; see castproxy.observe.metrics).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from castproxy.observe.metrics import CONTENT_TYPE
from castproxy.observe.observer import Observer

__all__ = ["metrics_endpoint"]


def metrics_endpoint(observer: Observer) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        await observer.before_scrape()
        return Response(observer.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    return endpoint
