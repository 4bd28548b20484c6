"""/admin: the operator's page. Workspaces and their tools, call counts, error rates and latency charts,
recent calls from the audit trail, and the sign-ins per workspace with a button that ends one.

Off (404) unless `server.admin` is set in the config being served; server-rendered, no script.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from castproxy import __version__
from castproxy.admin.charts import chart
from castproxy.admin.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    Session,
    Sessions,
    csrf_ok,
    key_digest,
    key_id,
    matching_key,
)
from castproxy.auth.events import grant_ref
from castproxy.auth.server.errors import PAGE_HEADERS
from castproxy.auth.server.limits import RateLimit, RateLimiter, caller_key, retry_after
from castproxy.config.model import AdminSettings
from castproxy.observe.audit import Record, iso_time
from castproxy.observe.observer import Observer
from castproxy.openapi.loader import is_url, safe_url
from castproxy.origins import normalize_origin

if TYPE_CHECKING:
    from castproxy.auth.bridge import AuthBridge
    from castproxy.serve.state import ServeState

__all__ = ["admin_routes"]

log = logging.getLogger(__name__)

HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}
LOGINS = RateLimit(per_minute=10, burst=5)  # failed admin logins per caller address
RECENT = 50
SHOWN_SIGN_INS = 500  # per workspace page, most recently used first
Handler = Callable[[Request], Awaitable[Response]]


def _when(seconds: float | None) -> str:
    if not seconds:
        return "—"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _caller_text(record: Record) -> str:
    caller = record.get("caller")
    if not isinstance(caller, dict):
        return ""
    parts = [str(caller[key]) for key in ("subject", "client_id", "key") if caller.get(key)]
    return " · ".join(parts) or str(caller.get("address", ""))


class AdminPages:
    def __init__(self, state: ServeState, observer: Observer, bridge: AuthBridge | None,
                 clock: Callable[[], float]) -> None:
        self.state = state
        self.clock = clock  # what admin sessions expire by (create_app's)
        self.observer = observer
        self.bridge = bridge
        env = Environment(loader=PackageLoader("castproxy.admin", "templates"), autoescape=select_autoescape(),
                          trim_blocks=True, lstrip_blocks=True)
        env.filters["when"] = _when
        env.filters["iso"] = iso_time
        env.filters["caller"] = _caller_text
        self.templates = Jinja2Templates(env=env)
        self.failed_logins = RateLimiter(LOGINS)
        self._sessions: tuple[str, Sessions] | None = None

    # --- plumbing -----------------------------------------------------------------------------------------

    def _settings(self) -> AdminSettings | None:
        return self.state.snapshot.loaded.config.server.admin

    def _sealer(self) -> Sessions | None:
        secret = self.state.snapshot.loaded.config.server.secret_key
        if secret is None:
            return None
        value = secret.get_secret_value()
        if self._sessions is None or self._sessions[0] != value:
            self._sessions = (value, Sessions(value, self.clock))
        return self._sessions[1]

    def _digests(self, settings: AdminSettings) -> list[bytes]:
        return [key_digest(key.get_secret_value()) for key in settings.api_keys]

    def _session(self, request: Request, settings: AdminSettings, sealer: Sessions) -> Session | None:
        session = sealer.read(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        if session.key not in {key_id(digest) for digest in self._digests(settings)}:
            return None  # opened with a key that is no longer configured
        return session

    def _secure(self) -> bool:
        return self.state.snapshot.loaded.public_url.startswith("https://")

    def _same_origin(self, request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None:
            return True
        return normalize_origin(origin) == normalize_origin(self.state.snapshot.loaded.public_url) or (
            normalize_origin(origin) == normalize_origin(str(request.base_url).rstrip("/"))
        )

    def _page(self, request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        context = {"version": __version__, "pid": os.getpid(), **context}
        return self.templates.TemplateResponse(request, name, context, status_code=status, headers=HEADERS)

    def _refused(self, request: Request, message: str, status: int) -> Response:
        return self._page(request, "message.html", {"title": "Request refused", "message": message}, status)

    def guarded(self, handler: Callable[[Request, Session, Sessions], Awaitable[Response]]) -> Handler:
        """An admin page or action: 404 while the admin page is off, the login page without a session,
        and for POSTs the Origin and CSRF checks first."""

        async def endpoint(request: Request) -> Response:
            settings, sealer = self._settings(), self._sealer()
            if settings is None or sealer is None:
                return JSONResponse({"error": "not_found", "message": "not found"}, status_code=404)
            session = self._session(request, settings, sealer)
            if request.method == "POST":
                if not self._same_origin(request):
                    return self._refused(request, "The form was submitted from another site.", 403)
                if session is None:
                    return RedirectResponse(self.url("/admin"), status_code=303)
                form = await request.form()
                if not csrf_ok(session, str(form.get("csrf") or "")):
                    return self._refused(request, "The form's CSRF token does not match this session.", 403)
            elif session is None:
                return self._login_page(request, sealer)
            return await handler(request, session, sealer)

        return endpoint

    def url(self, path: str) -> str:
        return self.state.snapshot.loaded.public_url.rstrip("/") + path

    # --- login ----------------------------------------------------------------------------------------------

    def _login_page(self, request: Request, sealer: Sessions, error: str = "", status: int = 200) -> Response:
        cookie = request.cookies.get(LOGIN_COOKIE)
        fresh = not cookie or len(cookie) < 32 or len(cookie) > 64
        if fresh:
            cookie = secrets.token_urlsafe(32)
        assert cookie is not None
        response = self._page(request, "login.html", {"csrf": sealer.login_token(cookie), "error": error}, status)
        if fresh:
            response.set_cookie(LOGIN_COOKIE, cookie, max_age=3600, path="/admin", httponly=True,
                                samesite="strict", secure=self._secure())
        return response

    async def login(self, request: Request) -> Response:
        settings, sealer = self._settings(), self._sealer()
        if settings is None or sealer is None:
            return JSONResponse({"error": "not_found", "message": "not found"}, status_code=404)
        if not self._same_origin(request):
            return self._refused(request, "The login form was submitted from another site.", 403)
        form = await request.form()
        if not sealer.login_token_ok(request.cookies.get(LOGIN_COOKIE), str(form.get("csrf") or "")):
            return self._refused(request, "The login form's CSRF token does not match this browser; "
                                 "reload the page and sign in again.", 403)
        address = caller_key(request.client.host if request.client else None)
        digest = matching_key(str(form.get("key") or ""), self._digests(settings))
        if digest is None:
            wait = self.failed_logins.take(address)
            if wait > 0:
                response = self._login_page(request, sealer, "Too many failed sign-ins; try again later.", 429)
                response.headers["Retry-After"] = retry_after(wait)
                return response
            log.warning("admin sign-in refused: wrong key", extra={"fields": {"address": address}})
            return self._login_page(request, sealer, "That key is not an admin key of this proxy.", 401)
        _, cookie = sealer.open(key_id(digest))
        log.info("admin signed in", extra={"fields": {"admin": key_id(digest), "address": address}})
        response = RedirectResponse(self.url("/admin"), status_code=303, headers={"Cache-Control": "no-store"})
        response.set_cookie(SESSION_COOKIE, cookie, max_age=int(SESSION_LIFETIME), path="/admin", httponly=True,
                            samesite="strict", secure=self._secure())
        response.delete_cookie(LOGIN_COOKIE, path="/admin")
        return response

    async def logout(self, request: Request, session: Session, sealer: Sessions) -> Response:
        response = RedirectResponse(self.url("/admin"), status_code=303, headers={"Cache-Control": "no-store"})
        response.delete_cookie(SESSION_COOKIE, path="/admin", httponly=True, samesite="strict", secure=self._secure())
        return response

    # --- pages ----------------------------------------------------------------------------------------------

    async def _grants_by_workspace(self) -> dict[str, list[dict[str, Any]]]:
        by_workspace: dict[str, list[dict[str, Any]]] = {}
        last_used = await self.observer.last_used()
        for grant in await self.observer.sign_ins():
            by_workspace.setdefault(grant.workspace, []).append({
                "ref": grant_ref(grant.grant_id),
                "client_id": grant.client_id,
                "subject": grant.subject,
                "email": grant.email,
                "since": grant.created_at,
                "last_used": last_used.get(grant.grant_id),
                "scopes": " ".join(grant.scopes),
            })
        for grants in by_workspace.values():
            grants.sort(key=lambda g: -(g["last_used"] or g["since"] or 0))
        return by_workspace

    def _reload(self) -> dict[str, Any]:
        state = self.state
        return {"good_at": state.last_good_at, "failed_at": state.last_error_at, "errors": list(state.last_error)}

    async def overview(self, request: Request, session: Session, sealer: Sessions) -> Response:
        snapshot = self.state.snapshot
        try:
            grants = await self._grants_by_workspace()
        except Exception as exc:  # the store is down: the page still shows the rest
            log.warning("admin page: sign-ins unavailable", extra={"fields": {"error_type": type(exc).__name__}})
            grants = {}
        rows = []
        for name in sorted({*snapshot.loaded.config.workspaces, *snapshot.workspaces}):
            config = snapshot.loaded.config.workspaces.get(name)
            runtime = snapshot.workspaces.get(name)
            stats = self.observer.stats.of(name)
            calls = sum(s.calls for s in stats.values())
            errors = sum(s.errors for s in stats.values())
            rows.append({
                "name": name,
                "tools": len(runtime.tools) if runtime is not None else 0,
                "auth": config.auth.type if config is not None else "",
                "source": self._source(config.openapi) if config is not None else "",
                "calls": calls,
                "error_rate": errors / calls if calls else 0.0,
                "sign_ins": len(grants.get(name, [])),
                "unavailable": snapshot.unavailable.get(name),
            })
        recent = self.observer.audit.records(lambda r: r["event"] == "tool_call", RECENT)
        events = self.observer.audit.records(lambda r: r["event"] != "tool_call", RECENT)
        return self._page(request, "overview.html", {
            "session": session, "workspaces": rows, "recent": recent, "events": events, "reload": self._reload(),
            "config_path": str(snapshot.loaded.path), "store": snapshot.loaded.config.store.backend,
            "audit_sink": snapshot.loaded.config.server.audit.sink,
        })

    @staticmethod
    def _source(openapi: str) -> str:
        return safe_url(openapi) if is_url(openapi) else openapi

    async def workspace(self, request: Request, session: Session, sealer: Sessions) -> Response:
        name = request.path_params["name"]
        snapshot = self.state.snapshot
        config = snapshot.loaded.config.workspaces.get(name)
        if config is None:
            return self._page(request, "message.html", {"title": "Unknown workspace",
                                                        "message": f"There is no workspace named {name[:64]!r}."},
                              404)
        runtime = snapshot.workspaces.get(name)
        stats = self.observer.stats.of(name)
        now = self.observer.stats.now()
        tools = []
        for tool in sorted(runtime.tools.values(), key=lambda t: t.definition.name) if runtime is not None else []:
            definition = tool.definition
            figures = stats.get(definition.name)
            tools.append({
                "name": definition.name,
                "method": definition.operation.method,
                "path": definition.operation.path,
                "calls": figures.calls if figures else 0,
                "error_rate": figures.error_rate if figures else 0.0,
                "mean_ms": figures.mean_ms if figures else 0.0,
                "chart": chart(figures.series(now)) if figures else None,
            })
        extra = sorted(set(stats) - {t["name"] for t in tools})  # meta-tools and (unknown)
        for tool_name in extra:
            figures = stats[tool_name]
            tools.append({"name": tool_name, "method": "", "path": "", "calls": figures.calls,
                          "error_rate": figures.error_rate, "mean_ms": figures.mean_ms,
                          "chart": chart(figures.series(now))})
        try:
            grants = (await self._grants_by_workspace()).get(name, [])
            grants_error = "" if len(grants) <= SHOWN_SIGN_INS else (
                f"{len(grants)} sign-ins; the {SHOWN_SIGN_INS} used most recently are shown")
            grants = grants[:SHOWN_SIGN_INS]
        except Exception as exc:  # the store is down: the page still shows the rest
            grants, grants_error = [], f"the sign-ins cannot be read from the store now ({type(exc).__name__})"
        drift = snapshot.drift.workspaces.get(name) if snapshot.drift is not None else None
        return self._page(request, "workspace.html", {
            "session": session, "name": name, "description": config.description or "",
            "source": self._source(config.openapi), "base_url": safe_url(runtime.base_url) if runtime else "",
            "auth": config.auth.type, "sign_in": bool(runtime and runtime.sign_in), "tools": tools,
            "grants": grants, "grants_error": grants_error, "unavailable": snapshot.unavailable.get(name),
            "drift": drift, "reload": self._reload(), "ended": request.query_params.get("ended", ""),
            "recent": self.observer.audit.records(lambda r: r.get("workspace") == name, RECENT),
        })

    async def end_sign_in(self, request: Request, session: Session, sealer: Sessions) -> Response:
        name = request.path_params["name"]
        ref = str((await request.form()).get("grant") or "")
        if self.bridge is None:
            return self._refused(request, "This proxy has no sign-ins (no authorization server).", 404)
        match = [g for g in await self.bridge.tokens.grants() if g.workspace == name and grant_ref(g.grant_id) == ref]
        if not match:
            return self._page(request, "message.html", {
                "title": "Sign-in not found", "message": "That sign-in has already ended or expired."}, 404)
        grant = match[0]
        await self.bridge.tokens.revoke_grant(grant.grant_id, reason=f"ended by an admin ({session.key})")
        log.warning("admin ended a sign-in", extra={"fields": {"workspace": name, "grant": ref,
                                                                "admin": session.key}})
        return RedirectResponse(self.url(f"/admin/workspaces/{name}?ended={ref}"), status_code=303,
                                headers={"Cache-Control": "no-store"})


def admin_routes(state: ServeState, observer: Observer, bridge: AuthBridge | None,
                 clock: Callable[[], float]) -> list[BaseRoute]:
    pages = AdminPages(state, observer, bridge, clock)
    return [
        Route("/admin", pages.guarded(pages.overview), methods=["GET"]),
        Route("/admin/login", pages.login, methods=["POST"]),
        Route("/admin/logout", pages.guarded(pages.logout), methods=["POST"]),
        Route("/admin/workspaces/{name}", pages.guarded(pages.workspace), methods=["GET"]),
        Route("/admin/workspaces/{name}/sign-ins/end", pages.guarded(pages.end_sign_in), methods=["POST"]),
    ]

