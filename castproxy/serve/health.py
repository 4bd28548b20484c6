"""Liveness and readiness, as JSON: /healthz says the process answers, /readyz that it can serve.

/readyz is 503 only when no workspace serves, the store is down or the secret key cannot read it; a
degraded workspace or a rejected reload shows in the body.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse

from castproxy.auth.bridge import AuthBridge
from castproxy.serve.snapshot import WorkspaceStatus
from castproxy.serve.state import ServeState

__all__ = ["healthz", "readyz"]


class Planner(Protocol):
    def retry_in(self, name: str) -> float | None: ...

    def refresh_in(self, name: str) -> float | None: ...

log = logging.getLogger(__name__)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _store_ok(state: ServeState) -> bool:
    if state.store is None:
        return True
    try:
        return bool(await state.store.ping())
    except Exception as exc:  # any failure means "not reachable": /readyz says so
        log.warning("store ping failed", extra={"fields": {"error_type": type(exc).__name__}})
        return False


def _workspace(name: str, status: WorkspaceStatus, planner: Planner | None) -> dict[str, object]:
    entry: dict[str, object] = {"state": status.state}
    if status.cached_at is not None:
        entry["spec"] = {"from": "cache", "cached_at": _iso(status.cached_at)}
    if status.problems:
        entry["problems"] = [str(problem) for problem in status.problems]
    if status.state != "serving":
        entry["since"] = _iso(status.since)
    retry = planner.retry_in(name) if planner is not None else None
    if retry is not None:
        entry["next_retry_in_s"] = round(retry, 1)
    refresh = planner.refresh_in(name) if planner is not None else None
    if refresh is not None:
        entry["next_refresh_in_s"] = round(refresh, 1)
    return entry


async def _key_problem(bridge: AuthBridge) -> str | None:
    """Why server.secret_key cannot read the store's encrypted records (the sign-ins in it), or None."""
    try:
        return await bridge.key_problem()
    except Exception as exc:  # a check that cannot run says nothing about the key
        log.warning("secret key check failed", extra={"fields": {"error_type": type(exc).__name__}})
        return None


def readyz(state: ServeState, planner: Planner | None = None) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def endpoint(request: Request) -> JSONResponse:
        snapshot = state.snapshot
        store_ok = await _store_ok(state)
        serving = snapshot.serving()
        healthy = all(not status.needs_retry for status in snapshot.status.values()) and not snapshot.unavailable
        status = "unready" if not (store_ok and serving) else "ready" if healthy else "degraded"
        body: dict[str, object] = {
            "status": status,
            "config": {
                "path": str(snapshot.loaded.path),
                "loaded_at": _iso(state.last_good_at),
                "workspaces": sorted(snapshot.workspaces),
            },
            "workspaces": {name: _workspace(name, snapshot.status[name], planner) for name in sorted(snapshot.status)},
            "store": {"backend": snapshot.loaded.config.store.backend, "reachable": store_ok}
            if state.store is not None else {"backend": None, "reachable": None},
        }
        if snapshot.drift is not None:
            body["lock"] = snapshot.drift.as_json()
        if snapshot.unavailable:
            body["unavailable"] = dict(sorted(snapshot.unavailable.items()))
        if state.bridge is not None:
            problem = await _key_problem(state.bridge)
            body["secret_key"] = {"reads_store": problem is None} if problem is None else {
                "reads_store": False, "problem": problem}
            if problem is not None:
                body["status"] = "unready"
        if state.last_error:
            body["last_reload"] = {
                "ok": False,
                "at": _iso(state.last_error_at or 0),
                "errors": list(state.last_error),
                "serving": f"the config loaded at {_iso(state.last_good_at)}",
            }
        return JSONResponse(body, status_code=503 if body["status"] == "unready" else 200)

    return endpoint
