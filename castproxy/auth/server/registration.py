"""POST /register: RFC 7591 dynamic client registration for public MCP clients."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from castproxy.auth.server.bodies import capped_body
from castproxy.auth.server.errors import NO_STORE, OAuthError
from castproxy.auth.server.state import AuthServer

MAX_BODY_BYTES = 64 * 1024


async def register(server: AuthServer, request: Request) -> Response:
    body = await capped_body(request, MAX_BODY_BYTES, error="invalid_client_metadata")
    try:
        metadata = json.loads(body)
    except ValueError:
        raise OAuthError("invalid_client_metadata", "the registration request must be a JSON object") from None
    if not isinstance(metadata, dict):
        raise OAuthError("invalid_client_metadata", "the registration request must be a JSON object")
    information = await server.clients.register(metadata)
    return JSONResponse(information, status_code=201, headers=NO_STORE)
