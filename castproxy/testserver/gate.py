"""Who is calling: the per-mode check in front of every API route (open, X-API-Key, or OAuth bearer token)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["ApiKeyGate", "Caller", "Gate", "OpenGate"]


@dataclass(frozen=True)
class Caller:
    """The identity behind a request: how it authenticated, the user (if any), the client, its scopes."""

    auth: str
    user_id: int | None = None
    client_id: str | None = None
    scopes: frozenset[str] = frozenset()


class Gate(Protocol):
    def check(self, request: Request, scope: str) -> Caller | Response:
        """The caller when allowed to use an endpoint needing `scope`, else the refusal to send."""
        ...


class OpenGate:
    """Mode `none`: everyone may call everything."""

    def check(self, request: Request, scope: str) -> Caller | Response:
        return Caller(auth="none")


class ApiKeyGate:
    """Mode `apikey`: the `X-API-Key` header must carry the server's key."""

    def __init__(self, api_key: str) -> None:
        self._key = api_key.encode()

    def check(self, request: Request, scope: str) -> Caller | Response:
        presented = request.headers.get("x-api-key")
        if not presented:
            return JSONResponse(
                {"error": "MISSING_API_KEY", "message": "send the API key in the X-API-Key header"}, status_code=401
            )
        if not hmac.compare_digest(presented.encode(), self._key):
            return JSONResponse({"error": "INVALID_API_KEY", "message": "the API key is not valid"}, status_code=401)
        return Caller(auth="apikey")
