"""Assemble the Starlette app: MCP endpoints, health, metrics, the admin page, the authorization server, hot reload.

`create_app` loads and compiles the config before returning (a config invalid as a whole raises
ConfigError here, so `castproxy serve` can print FILE:LINE:COL and exit 1 before it binds a port; a
workspace that does not build is only degraded). Everything with a connection (forwarder session,
session manager, watcher, background retries) starts and stops in the lifespan. One `Observer`
(castproxy.observe) hears of every call, sign-in and reload: audit trail, metrics, traces.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from castproxy.access.limits import rate_limits
from castproxy.admin.routes import admin_routes
from castproxy.auth.bridge import AuthBridge
from castproxy.auth.server.errors import error_page
from castproxy.config.loader import LoadedConfig, load_config
from castproxy.observe.observer import Observer
from castproxy.serve.builds import Builds
from castproxy.serve.calls import ToolCaller
from castproxy.serve.health import healthz, readyz
from castproxy.serve.inbound import bearer_protected
from castproxy.serve.mcp_endpoint import McpEndpoint, build_server
from castproxy.serve.metrics import metrics_endpoint
from castproxy.serve.recovery import Backoff
from castproxy.serve.reload import Reloader
from castproxy.serve.startup import environ_with_overrides, open_guarded_store
from castproxy.serve.state import ServeState
from castproxy.store import Store
from castproxy.store.crypto import Cipher
from castproxy.store.guard import StoreUnavailable
from castproxy.upstream.forwarder import Forwarder

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def _make_bridge(
    loaded: LoadedConfig, store: Store, clock: Callable[[], float], observer: Observer
) -> AuthBridge | None:
    """The authorization server for oauth2 workspaces, when a secret key is set (else they answer 503)."""
    secret_key = loaded.config.server.secret_key
    if secret_key is None:
        return None
    previous = [key.get_secret_value() for key in loaded.config.server.previous_secret_keys]
    cipher = Cipher.from_secret(secret_key.get_secret_value(), previous=previous)
    return AuthBridge(store=store, cipher=cipher, public_url=loaded.public_url, clock=clock,
                      identity=loaded.config.server.identity, events=observer)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    """503 + Retry-After wherever the store fails mid-request (sign-in pages, /token, /register...)."""
    assert isinstance(exc, StoreUnavailable)
    if "text/html" in request.headers.get("accept", ""):
        return error_page("Try again shortly", f"Sign-in is unavailable right now: {exc}.", status=503,
                          retry_after=str(exc.retry_after))
    return JSONResponse(
        {"error": "temporarily_unavailable", "error_description": str(exc)},
        status_code=503,
        headers={"Retry-After": str(exc.retry_after), "Cache-Control": "no-store"},
    )


def create_app(
    config_path: Path,
    *,
    reload: bool = True,
    host_override: str | None = None,
    port_override: int | None = None,
    clock: Callable[[], float] = time.time,
    retry: Backoff | None = None,
    worker: bool = False,
    tracer_provider: Any = None,
) -> Starlette:
    """`clock`: what castproxy reads every expiry against (tokens, sign-ins, admin sessions); tests advance theirs.
    `retry`: how soon a workspace that did not build is tried again (default: 1 s doubling to 60 s).
    `worker`: one of several processes serving the port (`serve --workers N`); their metrics add up
    through PROMETHEUS_MULTIPROC_DIR, which the supervisor sets up (castproxy.observe.metrics).
    `tracer_provider`: an OpenTelemetry TracerProvider to trace with (tests pass one with an in-memory
    exporter); by default traces are on only when the OTEL_* environment asks for them."""
    environ = environ_with_overrides(host_override, port_override)
    loaded = load_config(config_path, environ)
    store = open_guarded_store(loaded, clock)
    observer = Observer.from_settings(loaded.config.server.audit, loaded.base_dir, tracer_provider=tracer_provider)
    bridge = _make_bridge(loaded, store, clock, observer)
    builds = Builds(config_path, environ, loaded, bridge)
    snapshot = builds.first()
    observer.snapshot_installed(snapshot)
    observer.attach_store(store, bridge.tokens.grants if bridge is not None else None)

    forwarder = Forwarder()
    state = ServeState(snapshot, store=store, bridge=bridge)
    reloader = Reloader(config_path, state, builds, observer, retry)
    caller = ToolCaller(forwarder, observer, rate_limits(loaded, store))
    manager = StreamableHTTPSessionManager(build_server(caller), stateless=True, json_response=True)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await forwarder.start()
        try:
            async with manager.run():
                reloader.start(watch=reload)
                log.info("serving", extra={"fields": {"config": str(loaded.path),
                                                      "workspaces": state.snapshot.serving()}})
                observer.serving(len(state.snapshot.workspaces))
                try:
                    yield
                finally:
                    await reloader.stop()
        finally:
            await forwarder.close()
            if bridge is not None:
                await bridge.close()
            await observer.close()
            await store.close()

    mcp = McpEndpoint(manager, lambda: state.snapshot, lambda: bridge, retry_in=reloader.scheduler.retry_in,
                      observer=observer)
    metrics_token = loaded.config.server.metrics_token
    routes: list[BaseRoute] = [
        Route("/mcp/{workspace}", mcp),
        Route("/mcp/{workspace}/", mcp),  # served in place: a redirect would be built from the Host header
        Route("/healthz", healthz),
        Route("/readyz", readyz(state, reloader.scheduler)),
        Route(
            "/metrics",
            bearer_protected(
                metrics_endpoint(observer), metrics_token.get_secret_value() if metrics_token else None, "metrics"
            ),
        ),
        *admin_routes(state, observer, bridge, clock),
    ]
    if bridge is not None:
        routes += bridge.routes()
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={StoreUnavailable: _store_unavailable})
    # Starlette would answer /path/ with a 307 to the URL rebuilt from the request's Host header.
    app.router.redirect_slashes = False
    app.state.serve = state
    app.state.reloader = reloader
    app.state.observer = observer
    return app
