"""The test server's OAuth 2.0 authorization server (modes `oauth` and `oauth-dcr`), strict on purpose.

What it enforces (PKCE S256, exact redirect URIs, single-use codes, rotating refresh tokens, scopes):
docs/architecture.md, "Test server".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from castproxy.errors import CastproxyError
from castproxy.testserver.approval import approval_page, error_page
from castproxy.testserver.gate import Caller

__all__ = [
    "DEFAULT_REDIRECT_URIS", "GRANT_TYPES", "PRE_REGISTERED_CLIENT_ID", "SCOPES", "Client", "OAuthRefusal",
    "OAuthServer", "pkce_challenge"
]

SCOPES = ("read:items", "write:items", "read:users")
GRANT_TYPES = ("authorization_code", "client_credentials", "refresh_token")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
PRE_REGISTERED_CLIENT_ID = "test-client-id"
DEFAULT_REDIRECT_URIS = ("http://localhost:8080/oauth/callback", "http://127.0.0.1:8080/oauth/callback")
CODE_LIFETIME = 60
APPROVAL_LIFETIME = 600
REALM = "castproxy-testserver"

_PKCE_VALUE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


@dataclass
class Client:
    client_id: str
    client_secret: str | None
    redirect_uris: list[str]
    grant_types: tuple[str, ...] = GRANT_TYPES
    scopes: frozenset[str] = frozenset(SCOPES)
    auth_methods: frozenset[str] = frozenset({"client_secret_basic", "client_secret_post"})
    name: str = "castproxy"
    issued_at: int = field(default_factory=lambda: int(time.time()))


@dataclass
class _PendingApproval:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str
    code_challenge: str
    issuer: str
    expires_at: float


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    user_id: int
    code_challenge: str
    expires_at: float
    used: bool = False
    family: str = ""


@dataclass
class _Token:
    client_id: str
    user_id: int | None
    scopes: tuple[str, ...]
    family: str
    expires_at: float | None = None  # access tokens only
    used: bool = False  # refresh tokens only


class OAuthRefusal(CastproxyError):
    """The test server refusing an OAuth request: `error` is the RFC 6749 code, `description` is safe to show."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def issuer_of(request: Request) -> str:
    """The issuer as the caller addressed us (scheme + host[:port]), so metadata and `iss` match its URLs."""
    return str(request.base_url).rstrip("/")


def _token_error(exc: OAuthRefusal, *, basic: bool = False) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401 and basic:
        headers["WWW-Authenticate"] = f'Basic realm="{REALM}"'
    return JSONResponse({"error": exc.error, "error_description": exc.description}, exc.status, headers=headers)


class OAuthServer:
    """Clients, codes and tokens in memory, and the Starlette routes that serve them."""

    def __init__(
        self,
        *,
        users: Mapping[int, Mapping[str, Any]],
        token_lifetime: int = 3600,
        auto_approve: bool = False,
        registration: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.users = users
        self.token_lifetime = token_lifetime
        self.auto_approve = auto_approve
        self.registration = registration
        self.clock = clock
        self.clients: dict[str, Client] = {}
        self._pending: dict[str, _PendingApproval] = {}
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}

    # ---- clients -------------------------------------------------------------------------------

    def add_client(self, client: Client) -> Client:
        self.clients[client.client_id] = client
        return client

    def forget_client(self, client_id: str) -> None:
        """Delete a client (tests: simulate an upstream that dropped a registered client)."""
        self.clients.pop(client_id, None)

    def revoke_all(self) -> None:
        """Revoke every access and refresh token (tests: simulate a revoked grant)."""
        self._access.clear()
        self._refresh.clear()

    # ---- bearer check for the API --------------------------------------------------------------

    def check(self, request: Request, scope: str) -> Caller | Response:
        header = request.headers.get("authorization", "")
        kind, _, value = header.partition(" ")
        if kind.lower() != "bearer" or not value.strip():
            return JSONResponse(
                {"error": "missing_token", "error_description": "a Bearer access token is required"},
                401,
                headers={"WWW-Authenticate": f'Bearer realm="{REALM}", scope="{scope}"'},
            )
        token = self._access.get(value.strip())
        if token is None:
            return self._bearer_refusal(401, "invalid_token", "the access token is unknown or revoked", scope)
        if token.expires_at is not None and self.clock() >= token.expires_at:
            return self._bearer_refusal(401, "invalid_token", "the access token expired", scope)
        if scope not in token.scopes:
            return self._bearer_refusal(403, "insufficient_scope", f"this endpoint needs the scope {scope}", scope)
        return Caller(auth="oauth", user_id=token.user_id, client_id=token.client_id, scopes=frozenset(token.scopes))

    @staticmethod
    def _bearer_refusal(status: int, error: str, description: str, scope: str) -> JSONResponse:
        challenge = f'Bearer realm="{REALM}", error="{error}", error_description="{description}", scope="{scope}"'
        return JSONResponse(
            {"error": error, "error_description": description}, status, headers={"WWW-Authenticate": challenge}
        )

    # ---- routes --------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        routes = [
            Route("/.well-known/oauth-authorization-server", self.metadata, methods=["GET"]),
            Route("/auth/authorize", self.authorize, methods=["GET"]),
            Route("/auth/authorize", self.answer_approval, methods=["POST"]),
            Route("/auth/token", self.token, methods=["POST"]),
            Route("/auth/revoke", self.revoke, methods=["POST"]),
        ]
        if self.registration:
            routes.append(Route("/auth/clients", self.register, methods=["POST"]))
        return routes

    async def metadata(self, request: Request) -> Response:
        issuer = issuer_of(request)
        document: dict[str, Any] = {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/auth/authorize",
            "token_endpoint": f"{issuer}/auth/token",
            "revocation_endpoint": f"{issuer}/auth/revoke",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "grant_types_supported": list(GRANT_TYPES),
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        }
        if self.registration:
            document["registration_endpoint"] = f"{issuer}/auth/clients"
        return JSONResponse(document)

    # ---- authorization endpoint ----------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        params = request.query_params
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            return HTMLResponse(error_page("Unknown client_id."), 400)
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None and len(client.redirect_uris) == 1:
            redirect_uri = client.redirect_uris[0]
        if redirect_uri is None or redirect_uri not in client.redirect_uris:
            # Never redirect to an unregistered address (RFC 6749 §4.1.2.1).
            message = f"The redirect_uri {redirect_uri!r} is not registered for this client."
            return HTMLResponse(error_page(message), 400)

        issuer = issuer_of(request)
        state = params.get("state", "")

        def refuse(error: str, description: str) -> Response:
            answer = {"error": error, "error_description": description, "iss": issuer}
            if state:
                answer["state"] = state
            return RedirectResponse(_with_query(redirect_uri, answer), 302)

        if params.get("response_type") != "code":
            return refuse("unsupported_response_type", "response_type must be code")
        if "authorization_code" not in client.grant_types:
            return refuse("unauthorized_client", "this client may not use authorization_code")
        if not state:
            return refuse("invalid_request", "state is required")
        challenge = params.get("code_challenge", "")
        if not challenge:
            return refuse("invalid_request", "code_challenge is required (PKCE S256)")
        if params.get("code_challenge_method") != "S256":
            return refuse("invalid_request", "code_challenge_method must be S256")
        if not _PKCE_VALUE.match(challenge):
            return refuse("invalid_request", "code_challenge is malformed")
        try:
            scopes = self._granted_scopes(client, params.get("scope"))
        except OAuthRefusal as exc:
            return refuse(exc.error, exc.description)

        pending = _PendingApproval(client_id=client.client_id, redirect_uri=redirect_uri, scopes=scopes, state=state,
                                   code_challenge=challenge, issuer=issuer, expires_at=self.clock() + APPROVAL_LIFETIME)
        if self.auto_approve:
            return self._approve(pending, self._user_from_hint(params.get("login_hint")))
        return self._approval_page(pending, client)

    def _approval_page(self, pending: _PendingApproval, client: Client) -> Response:
        request_id = secrets.token_urlsafe(24)
        self._pending[request_id] = pending
        page = approval_page(request_id=request_id, client_name=client.name, redirect_uri=pending.redirect_uri,
                             scopes=pending.scopes, users=self.users.values())
        return HTMLResponse(page, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})

    async def answer_approval(self, request: Request) -> Response:
        form = await request.form()
        pending = self._pending.pop(str(form.get("request_id", "")), None)
        if pending is None or self.clock() >= pending.expires_at:
            return HTMLResponse(error_page("This sign-in request expired or was already answered."), 400)
        if form.get("decision") != "approve":
            answer = {
                "error": "access_denied",
                "error_description": "the user denied access",
                "state": pending.state,
                "iss": pending.issuer,
            }
            return RedirectResponse(_with_query(pending.redirect_uri, answer), 303)
        try:
            user_id = int(str(form.get("user_id", "1")))
        except ValueError:
            user_id = 0
        if user_id not in self.users:
            return HTMLResponse(error_page("Unknown user."), 400)
        return self._approve(pending, user_id, status=303)

    def _user_from_hint(self, hint: str | None) -> int:
        for user_id, user in self.users.items():
            if hint and hint in (str(user_id), user.get("email")):
                return user_id
        return next(iter(self.users.keys()))

    def _approve(self, pending: _PendingApproval, user_id: int, status: int = 302) -> Response:
        code = secrets.token_urlsafe(32)
        self._codes[code] = _Code(client_id=pending.client_id, redirect_uri=pending.redirect_uri, scopes=pending.scopes,
                                  user_id=user_id, code_challenge=pending.code_challenge,
                                  expires_at=self.clock() + CODE_LIFETIME)
        answer = {"code": code, "state": pending.state, "iss": pending.issuer}
        return RedirectResponse(_with_query(pending.redirect_uri, answer), status)

    def _granted_scopes(self, client: Client, requested: str | None) -> tuple[str, ...]:
        if not requested or not requested.strip():
            return tuple(scope for scope in SCOPES if scope in client.scopes)
        wanted = requested.split()
        unknown = [scope for scope in wanted if scope not in client.scopes]
        if unknown:
            raise OAuthRefusal("invalid_scope", f"scope not allowed: {' '.join(unknown)}")
        return tuple(dict.fromkeys(wanted))

    # ---- token endpoint ------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        basic = request.headers.get("authorization", "").lower().startswith("basic ")
        try:
            client = self._authenticate_client(request, form)
            grant_type = form.get("grant_type", "")
            if grant_type not in GRANT_TYPES:
                raise OAuthRefusal("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
            if grant_type not in client.grant_types:
                raise OAuthRefusal("unauthorized_client", f"this client may not use {grant_type}")
            if grant_type == "authorization_code":
                answer = self._exchange_code(client, form)
            elif grant_type == "refresh_token":
                answer = self._refresh_tokens(client, form)
            else:
                scopes = self._granted_scopes(client, form.get("scope"))
                answer = self._issue(client, None, scopes, family=secrets.token_hex(8), refresh=False)
        except OAuthRefusal as exc:
            return _token_error(exc, basic=basic)
        return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _authenticate_client(self, request: Request, form: Mapping[str, str]) -> Client:
        header = request.headers.get("authorization", "")
        method = "none"
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        if header.lower().startswith("basic "):
            if secret is not None:
                raise OAuthRefusal("invalid_request", "use one client authentication method, not two")
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise OAuthRefusal("invalid_client", "malformed Basic credentials", 401) from None
            raw_id, sep, raw_secret = decoded.partition(":")
            if not sep:
                raise OAuthRefusal("invalid_client", "malformed Basic credentials", 401)
            # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
            basic_id, secret = unquote(raw_id.replace("+", " ")), unquote(raw_secret.replace("+", " "))
            if client_id and client_id != basic_id:
                raise OAuthRefusal("invalid_request", "client_id differs from the Basic credentials")
            client_id, method = basic_id, "client_secret_basic"
        elif secret is not None:
            method = "client_secret_post"
        client = self.clients.get(client_id)
        if client is None:
            raise OAuthRefusal("invalid_client", "unknown client", 401)
        if client.client_secret is None:
            if method != "none":
                raise OAuthRefusal("invalid_client", "this public client has no secret", 401)
            return client
        if method == "none":
            raise OAuthRefusal("invalid_client", "client authentication is required", 401)
        if method not in client.auth_methods:
            methods = sorted(client.auth_methods)
            raise OAuthRefusal("invalid_client", f"this client must authenticate with {methods}", 401)
        if not hmac.compare_digest((secret or "").encode(), client.client_secret.encode()):
            raise OAuthRefusal("invalid_client", "client authentication failed", 401)
        return client

    def _exchange_code(self, client: Client, form: Mapping[str, str]) -> dict[str, Any]:
        code = self._codes.get(form.get("code", ""))
        if code is None:
            raise OAuthRefusal("invalid_grant", "the authorization code is unknown")
        if code.used:
            # A replayed code may mean it leaked: revoke what it produced (RFC 6749 §4.1.2).
            self._revoke_family(code.family)
            raise OAuthRefusal("invalid_grant", "the authorization code was already used")
        if self.clock() >= code.expires_at:
            raise OAuthRefusal("invalid_grant", "the authorization code expired")
        if code.client_id != client.client_id:
            raise OAuthRefusal("invalid_grant", "the authorization code was issued to another client")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthRefusal("invalid_grant", "redirect_uri does not match the authorization request")
        verifier = form.get("code_verifier")
        if not verifier:
            raise OAuthRefusal("invalid_request", "code_verifier is required (PKCE)")
        if not _PKCE_VALUE.match(verifier) or not hmac.compare_digest(pkce_challenge(verifier), code.code_challenge):
            raise OAuthRefusal("invalid_grant", "code_verifier does not match the code_challenge")
        code.used = True
        code.family = secrets.token_hex(8)
        refresh = "refresh_token" in client.grant_types
        return self._issue(client, code.user_id, code.scopes, family=code.family, refresh=refresh)

    def _refresh_tokens(self, client: Client, form: Mapping[str, str]) -> dict[str, Any]:
        presented = self._refresh.get(form.get("refresh_token", ""))
        if presented is None:
            raise OAuthRefusal("invalid_grant", "the refresh token is unknown or revoked")
        if presented.client_id != client.client_id:
            raise OAuthRefusal("invalid_grant", "the refresh token was issued to another client")
        if presented.used:
            # Reuse of a rotated token: treat the family as stolen (RFC 9700 §4.14.2).
            self._revoke_family(presented.family)
            raise OAuthRefusal("invalid_grant", "the refresh token was already used")
        scopes = presented.scopes
        if form.get("scope"):
            narrower = tuple(dict.fromkeys(form["scope"].split()))
            if not set(narrower) <= set(presented.scopes):
                raise OAuthRefusal("invalid_scope", "a refresh cannot widen the granted scopes")
            scopes = narrower
        presented.used = True
        return self._issue(client, presented.user_id, scopes, family=presented.family, refresh=True)

    def _issue(
        self, client: Client, user_id: int | None, scopes: Iterable[str], *, family: str, refresh: bool
    ) -> dict[str, Any]:
        scopes = tuple(scopes)
        access = "at_" + secrets.token_urlsafe(32)
        self._access[access] = _Token(
            client.client_id, user_id, scopes, family, expires_at=self.clock() + self.token_lifetime
        )
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": " ".join(scopes),
        }
        if refresh:
            refresh_token = "rt_" + secrets.token_urlsafe(32)
            self._refresh[refresh_token] = _Token(client.client_id, user_id, scopes, family)
            answer["refresh_token"] = refresh_token
        return answer

    def _revoke_family(self, family: str) -> None:
        if not family:
            return
        for table in (self._access, self._refresh):
            for key in [key for key, token in table.items() if token.family == family]:
                del table[key]

    # ---- revocation (RFC 7009) -----------------------------------------------------------------

    async def revoke(self, request: Request) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        basic = request.headers.get("authorization", "").lower().startswith("basic ")
        try:
            client = self._authenticate_client(request, form)
        except OAuthRefusal as exc:
            return _token_error(exc, basic=basic)
        value = form.get("token", "")
        token = self._refresh.get(value) or self._access.get(value)
        if token is not None and token.client_id == client.client_id:
            if value in self._refresh:
                self._revoke_family(token.family)  # revoking a refresh token ends the grant
            else:
                self._access.pop(value, None)
        return Response(status_code=200)

    # ---- dynamic client registration (RFC 7591) ------------------------------------------------

    async def register(self, request: Request) -> Response:
        try:
            metadata = await request.json()
        except ValueError:
            metadata = None
        if not isinstance(metadata, dict):
            return self._registration_error("invalid_client_metadata", "the body must be a JSON object")
        redirect_uris = metadata.get("redirect_uris")
        if not isinstance(redirect_uris, list) or not redirect_uris:
            return self._registration_error("invalid_redirect_uri", "redirect_uris must be a non-empty list")
        for uri in redirect_uris:
            parts = urlsplit(uri) if isinstance(uri, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
                return self._registration_error("invalid_redirect_uri", f"not an absolute http(s) URI: {uri!r}")
        grant_types = metadata.get("grant_types", ["authorization_code", "refresh_token"])
        if not isinstance(grant_types, list) or not set(grant_types) <= set(GRANT_TYPES) or not grant_types:
            return self._registration_error("invalid_client_metadata", f"grant_types must be among {list(GRANT_TYPES)}")
        response_types = metadata.get("response_types", ["code"])
        if response_types != ["code"]:
            return self._registration_error("invalid_client_metadata", "response_types must be ['code']")
        method = metadata.get("token_endpoint_auth_method", "client_secret_basic")
        if method not in AUTH_METHODS:
            return self._registration_error("invalid_client_metadata", f"token_endpoint_auth_method must be one of "
                                            f"{list(AUTH_METHODS)}")
        if method == "none" and "client_credentials" in grant_types:
            return self._registration_error("invalid_client_metadata", "a public client cannot use client_credentials")
        scope = metadata.get("scope")
        if scope is not None and (not isinstance(scope, str) or not set(scope.split()) <= set(SCOPES)):
            return self._registration_error("invalid_client_metadata", f"scope must be among {' '.join(SCOPES)}")
        name = metadata.get("client_name")
        client = self.add_client(
            Client(
                client_id="dcr_" + secrets.token_urlsafe(12),
                client_secret=None if method == "none" else "cs_" + secrets.token_urlsafe(24),
                redirect_uris=list(redirect_uris),
                grant_types=tuple(grant_types),
                scopes=frozenset(scope.split()) if scope else frozenset(SCOPES),
                auth_methods=frozenset({method}),
                name=name if isinstance(name, str) and name else "unnamed client",
            )
        )
        answer: dict[str, Any] = {
            "client_id": client.client_id,
            "client_id_issued_at": client.issued_at,
            "redirect_uris": client.redirect_uris,
            "grant_types": list(client.grant_types),
            "response_types": ["code"],
            "token_endpoint_auth_method": method,
            "scope": " ".join(scope for scope in SCOPES if scope in client.scopes),
            "client_name": client.name,
        }
        if client.client_secret is not None:
            answer["client_secret"] = client.client_secret
            answer["client_secret_expires_at"] = 0
        return JSONResponse(answer, 201, headers={"Cache-Control": "no-store"})

    @staticmethod
    def _registration_error(error: str, description: str) -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description}, 400)
