"""POST /register: RFC 7591 dynamic client registration for public MCP clients.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from castproxy.auth.server.auth_server import AuthServer
from castproxy.auth.server.bodies import capped_body
from castproxy.auth.server.errors import NO_STORE, OAuthError
from castproxy.auth.server.limits import caller_key, retry_after

__all__ = ["register"]

MAX_BODY_BYTES = 64 * 1024


async def register(server: AuthServer, request: Request) -> Response:
    # Counted before the body is read: a refused request costs as little as possible.
    wait = server.registrations.take(caller_key(request.client.host if request.client else None))
    if wait:
        seconds = retry_after(wait)
        raise OAuthError(
            "temporarily_unavailable",
            f"too many client registrations from this address; retry in {seconds} s",
            status=429,
            retry_after=seconds,
        )
    body = await capped_body(request, MAX_BODY_BYTES, error="invalid_client_metadata")
    try:
        metadata = json.loads(body)
    except ValueError:
        raise OAuthError("invalid_client_metadata", "the registration request must be a JSON object") from None
    if not isinstance(metadata, dict):
        raise OAuthError("invalid_client_metadata", "the registration request must be a JSON object")
    information = await server.clients.register(metadata)
    return JSONResponse(information, status_code=201, headers=NO_STORE)
