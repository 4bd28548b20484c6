"""The test server's login endpoint and JWTs (mode `jwt`): what castproxy's `auth.type: login` is tested against.

Login, rotating refresh, logout; HS256 tokens checked on every call (docs/architecture.md, "Test server").
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from castproxy.testserver.gate import Caller
from castproxy.testserver.oauth import SCOPES

__all__ = ["REFRESH_LIFETIME", "JwtServer", "generate_password", "usernames"]

ALGORITHM = "HS256"
REFRESH_LIFETIME = 24 * 3600
REALM = "castproxy-testserver"


def generate_password() -> str:
    return "pw_" + secrets.token_urlsafe(18)


def usernames(users: Mapping[int, Mapping[str, Any]]) -> dict[str, int]:
    """Login names of the seeded users: the part of their e-mail before the @ (alice, bob, carol)."""
    return {str(user["email"]).split("@", 1)[0]: user_id for user_id, user in users.items()}


@dataclass
class _Session:
    user_id: int
    ended: bool = False


class _Refusal(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message

    def response(self) -> JSONResponse:
        headers = {"Cache-Control": "no-store"}
        if self.status == 401:
            headers["WWW-Authenticate"] = f'Bearer realm="{REALM}", error="invalid_token"'
        return JSONResponse({"error": self.error, "message": self.message}, self.status, headers=headers)


class JwtServer:
    """Sessions and JWTs in memory, and the routes that serve them. `logins`/`refreshes` count what arrived."""

    def __init__(
        self,
        *,
        users: Mapping[int, Mapping[str, Any]],
        password: str,
        token_lifetime: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.users = users
        self.accounts = usernames(users)
        self.password = password
        self.token_lifetime = token_lifetime
        self.clock = clock
        self._key = OctKey.generate_key(256)
        self._sessions: dict[str, _Session] = {}
        self._used_refresh: set[str] = set()
        self._revoked_access: set[str] = set()
        self.logins: Counter[str] = Counter()  # "ok" | "refused"
        self.refreshes: Counter[str] = Counter()  # "ok" | "refused"

    def routes(self) -> list[Route]:
        return [
            Route("/auth/login", self.login, methods=["POST"]),
            Route("/auth/refresh", self.refresh, methods=["POST"]),
            Route("/auth/logout", self.logout, methods=["POST"]),
        ]

    # ---- what tests (and operators) can do ---------------------------------------------------------

    def revoke_all(self) -> None:
        """End every session: all access and refresh tokens issued so far are refused."""
        for session in self._sessions.values():
            session.ended = True

    def revoke_access_token(self, token: str) -> None:
        """Refuse this one access token from now on; its session (and refresh token) lives on."""
        self._revoked_access.add(str(self._claims(token, "access")["jti"]))

    # ---- tokens --------------------------------------------------------------------------------------

    def _issue(self, user_id: int, session_id: str, issuer: str) -> dict[str, Any]:
        now = int(self.clock())
        common = {"iss": issuer, "sub": str(user_id), "sid": session_id, "iat": now}
        access = {
            **common,
            "token_use": "access",
            "name": self.users[user_id]["name"],
            "scope": " ".join(SCOPES),
            "exp": now + self.token_lifetime,
            "jti": secrets.token_urlsafe(12),
        }
        refresh = {**common, "token_use": "refresh", "exp": now + REFRESH_LIFETIME, "jti": secrets.token_urlsafe(12)}
        header = {"alg": ALGORITHM, "typ": "JWT"}
        return {
            "access_token": jwt.encode(header, access, self._key),
            "token_type": "Bearer",
            "refresh_token": jwt.encode(header, refresh, self._key),
        }

    def _claims(self, value: str, kind: str) -> dict[str, Any]:
        """The verified claims of a live token of this kind, else _Refusal (401)."""
        try:
            claims = jwt.decode(value, self._key, algorithms=[ALGORITHM]).claims
            jwt.JWTClaimsRegistry(now=lambda: int(self.clock()), exp={"essential": True}).validate(claims)
        except JoseError as exc:
            raise _Refusal(401, "invalid_token", f"the {kind} token is not valid ({exc.error})") from None
        if claims.get("token_use") != kind:
            raise _Refusal(401, "invalid_token", f"this is not an {kind} token")
        session = self._sessions.get(str(claims.get("sid")))
        if session is None or session.ended:
            raise _Refusal(401, "invalid_token", "the session of this token has ended")
        if kind == "access" and claims.get("jti") in self._revoked_access:
            raise _Refusal(401, "invalid_token", "the access token was revoked")
        return claims

    # ---- the API's gate ------------------------------------------------------------------------------

    def check(self, request: Request, scope: str) -> Caller | Response:
        kind, _, value = request.headers.get("authorization", "").partition(" ")
        if kind.lower() != "bearer" or not value.strip():
            return _Refusal(401, "missing_token", "log in at /auth/login and send the token as Bearer").response()
        try:
            claims = self._claims(value.strip(), "access")
        except _Refusal as refusal:
            return refusal.response()
        scopes = frozenset(str(claims.get("scope", "")).split())
        if scope not in scopes:
            return JSONResponse({"error": "insufficient_scope", "message": f"this endpoint needs {scope}"}, 403)
        return Caller(auth="jwt", user_id=int(claims["sub"]), scopes=scopes)

    # ---- endpoints -----------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        try:
            fields = await _fields(request)
            username, password = fields.get("username", ""), fields.get("password", "")
            if not username or not password:
                raise _Refusal(400, "invalid_request", "send username and password (JSON or a form)")
            user_id = self.accounts.get(username)
            if user_id is None or not hmac.compare_digest(password.encode(), self.password.encode()):
                raise _Refusal(401, "invalid_credentials", "wrong username or password")
        except _Refusal as refusal:
            self.logins["refused"] += 1
            return refusal.response()
        self.logins["ok"] += 1
        session_id = secrets.token_urlsafe(12)
        self._sessions[session_id] = _Session(user_id)
        return _tokens(self._issue(user_id, session_id, _issuer(request)))

    async def refresh(self, request: Request) -> Response:
        try:
            fields = await _fields(request)
            kind, _, bearer = request.headers.get("authorization", "").partition(" ")
            presented = fields.get("refresh_token") or (bearer.strip() if kind.lower() == "bearer" else "")
            if not presented:
                raise _Refusal(400, "invalid_request", "send the refresh token as refresh_token (JSON or a form)")
            claims = self._claims(presented, "refresh")
            session_id = str(claims["sid"])
            if claims["jti"] in self._used_refresh:
                self._sessions[session_id].ended = True  # reuse of a rotated token: treat the session as stolen
                raise _Refusal(401, "invalid_token", "the refresh token was already used; the session has ended")
        except _Refusal as refusal:
            self.refreshes["refused"] += 1
            return refusal.response()
        self._used_refresh.add(str(claims["jti"]))
        self.refreshes["ok"] += 1
        return _tokens(self._issue(int(claims["sub"]), session_id, _issuer(request)))

    async def logout(self, request: Request) -> Response:
        kind, _, value = request.headers.get("authorization", "").partition(" ")
        try:
            claims = self._claims(value.strip() if kind.lower() == "bearer" else "", "access")
        except _Refusal as refusal:
            return refusal.response()
        self._sessions[str(claims["sid"])].ended = True
        return Response(status_code=204)


async def _fields(request: Request) -> dict[str, str]:
    """The body's string fields, JSON or form; _Refusal (400) for anything else."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await request.body()
    if not body:
        return {}
    if content_type == "application/x-www-form-urlencoded":
        form = await request.form()
        return {key: value for key, value in form.items() if isinstance(value, str)}
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            data = await request.json()
        except ValueError:
            raise _Refusal(400, "invalid_request", "the body is not valid JSON") from None
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if isinstance(value, str)}
        raise _Refusal(400, "invalid_request", "the JSON body must be an object")
    raise _Refusal(415, "unsupported_media_type", "send application/json or application/x-www-form-urlencoded")


def _tokens(answer: dict[str, Any]) -> JSONResponse:
    return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _issuer(request: Request) -> str:
    return str(request.base_url).rstrip("/")
