"""Builds the test server's Starlette app for one mode: `none`, `apikey`, `oauth`, `oauth-dcr` or `jwt`.

`app.state` holds `credentials`, `data`, and `oauth` or `jwt` (their counters and revocations for tests).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from castproxy.testserver.api import api_routes
from castproxy.testserver.data import DataStore
from castproxy.testserver.document import openapi_document
from castproxy.testserver.gate import ApiKeyGate, Gate, OpenGate
from castproxy.testserver.jwt import JwtServer, generate_password, usernames
from castproxy.testserver.oauth import DEFAULT_REDIRECT_URIS, PRE_REGISTERED_CLIENT_ID, Client, OAuthServer

__all__ = ["TestServerCredentials", "create_app", "generate_client_secret"]


def generate_client_secret() -> str:
    return "cs_" + secrets.token_urlsafe(24)


def generate_api_key() -> str:
    return "cast_" + secrets.token_urlsafe(24)


@dataclass(frozen=True)
class TestServerCredentials:
    """`app.state.credentials`: fields not used by the mode are None / empty."""

    __test__ = False  # not a pytest test class despite the name

    mode: str
    client_id: str | None = None
    client_secret: str | None = None
    api_key: str | None = None
    redirect_uris: tuple[str, ...] = ()
    auto_approve: bool = False
    usernames: tuple[str, ...] = ()  # mode jwt: who can log in, all with `password`
    password: str | None = None
    token_lifetime: int | None = None


MODES = ("none", "apikey", "oauth", "oauth-dcr", "jwt")
DEFAULT_TOKEN_LIFETIME = {"jwt": 300}  # seconds; other modes 3600


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, "ERROR")
    message = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return JSONResponse({"error": code, "message": message}, status_code=status)


def create_app(
    mode: str,
    *,
    auto_approve: bool = False,
    redirect_uris: list[str] | None = None,
    token_lifetime: int | None = None,
    client_secret: str | None = None,
    api_key: str | None = None,
    password: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """`token_lifetime` None: 300 s in mode jwt, else 3600 s. `clock` is what token expiry is read against."""
    if mode not in MODES:
        raise ValueError(f"unknown test server mode {mode!r}; choose one of {', '.join(MODES)}")
    if token_lifetime is None:
        token_lifetime = DEFAULT_TOKEN_LIFETIME.get(mode, 3600)
    if token_lifetime < 0:
        raise ValueError("token_lifetime must be >= 0 seconds")
    data = DataStore.seeded()
    gate: Gate = OpenGate()
    oauth: OAuthServer | None = None
    jwt: JwtServer | None = None
    credentials = TestServerCredentials(mode=mode)
    routes: list[Route] = []

    if mode == "apikey":
        api_key = api_key or generate_api_key()
        gate = ApiKeyGate(api_key)
        credentials = TestServerCredentials(mode=mode, api_key=api_key)
    elif mode in ("oauth", "oauth-dcr"):
        oauth, credentials = _oauth_server(mode, data, auto_approve, redirect_uris, token_lifetime, client_secret,
                                           clock)
        gate = oauth
        routes += oauth.routes()
    elif mode == "jwt":
        password = password or generate_password()
        jwt = JwtServer(users=data.users, password=password, token_lifetime=token_lifetime, clock=clock)
        gate = jwt
        routes += jwt.routes()
        credentials = TestServerCredentials(
            mode=mode, usernames=tuple(usernames(data.users)), password=password, token_lifetime=token_lifetime
        )

    routes += [*_info_routes(mode), *api_routes(data, gate)]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error, Exception: _http_error})
    app.state.credentials = credentials
    app.state.data = data
    app.state.oauth = oauth
    app.state.jwt = jwt
    return app


def _oauth_server(
    mode: str, data: DataStore, auto_approve: bool, redirect_uris: list[str] | None, token_lifetime: int,
    client_secret: str | None, clock: Callable[[], float],
) -> tuple[OAuthServer, TestServerCredentials]:
    """Modes oauth and oauth-dcr: the authorization server with its pre-registered client."""
    client_secret = client_secret or generate_client_secret()
    uris = list(redirect_uris or DEFAULT_REDIRECT_URIS)
    oauth = OAuthServer(users=data.users, token_lifetime=token_lifetime, auto_approve=auto_approve,
                        registration=mode == "oauth-dcr", clock=clock)
    oauth.add_client(Client(client_id=PRE_REGISTERED_CLIENT_ID, client_secret=client_secret, redirect_uris=uris))
    credentials = TestServerCredentials(mode=mode, client_id=PRE_REGISTERED_CLIENT_ID, client_secret=client_secret,
                                        redirect_uris=tuple(uris), auto_approve=auto_approve)
    return oauth, credentials


def _info_routes(mode: str) -> list[Route]:
    """`/` (name and mode), `/healthz` and `/openapi.json` (with the caller's base URL as its server)."""

    async def document(request: Request) -> Response:
        return JSONResponse(openapi_document(mode, str(request.base_url).rstrip("/")))

    async def index(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"name": "castproxy test server", "mode": mode, "openapi": f"{base}/openapi.json"})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return [
        Route("/", index, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", document, methods=["GET"]),
    ]
