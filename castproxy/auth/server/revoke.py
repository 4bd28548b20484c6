"""POST /revoke: RFC 7009. Unknown tokens answer 200 too, so the endpoint reveals nothing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from castproxy.auth.server.auth_server import AuthServer
from castproxy.auth.server.errors import NO_STORE
from castproxy.auth.server.token_endpoint import form_value, read_form

__all__ = ["revoke"]


async def revoke(server: AuthServer, request: Request) -> Response:
    form = await read_form(request)
    token = form_value(form, "token", required=True) or ""
    await server.tokens.revoke_token(token, client_id=form_value(form, "client_id"))
    return Response(status_code=200, headers=NO_STORE)
