"""POST /token: authorization_code (with PKCE) and refresh_token (rotating) for public clients."""

from __future__ import annotations

import base64
from urllib.parse import unquote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from castproxy.auth.server.auth_server import AuthServer
from castproxy.auth.server.bodies import capped_form
from castproxy.auth.server.errors import NO_STORE, OAuthError
from castproxy.auth.server.records import canonical_resource

__all__ = ["form_value", "read_form", "token"]


def form_value(form: FormData, name: str, *, required: bool = False, why: str = "") -> str | None:
    values = form.getlist(name)
    if len(values) > 1:
        raise OAuthError("invalid_request", f"parameter {name} given more than once")
    value = values[0] if values else None
    if value is not None and not isinstance(value, str):
        raise OAuthError("invalid_request", f"parameter {name} must be a plain form field")
    if required and not value:
        raise OAuthError("invalid_request", f"{name} is required{why}")
    return value


async def read_form(request: Request) -> FormData:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise OAuthError("invalid_request", "send the parameters as application/x-www-form-urlencoded")
    return await capped_form(request)


def client_id_of(request: Request, form: FormData) -> str:
    """Public clients name themselves in the body; an HTTP Basic header is read for its client id only."""
    client_id = form_value(form, "client_id")
    header = request.headers.get("authorization", "")
    if not client_id and header[:6].lower() == "basic ":
        try:
            client_id = unquote(base64.b64decode(header[6:]).decode().split(":", 1)[0])
        except ValueError:
            raise OAuthError("invalid_client", "malformed Basic authorization header", status=401) from None
    if not client_id:
        raise OAuthError("invalid_request", "client_id is required")
    return client_id


async def token(server: AuthServer, request: Request) -> Response:
    form = await read_form(request)
    client_id = client_id_of(request, form)
    grant_type = form_value(form, "grant_type", required=True)
    resource = form_value(form, "resource")
    wanted_resource = canonical_resource(resource) if resource else None
    if grant_type == "authorization_code":
        issued = await server.tokens.redeem_code(
            form_value(form, "code", required=True) or "",
            client_id=client_id,
            redirect_uri=form_value(form, "redirect_uri", required=True) or "",
            code_verifier=form_value(form, "code_verifier", required=True, why=" (PKCE)") or "",
            resource=wanted_resource,
        )
    elif grant_type == "refresh_token":
        scope = form_value(form, "scope")
        issued = await server.tokens.refresh(
            form_value(form, "refresh_token", required=True) or "",
            client_id=client_id,
            scopes=tuple(scope.split()) if scope else None,
            resource=wanted_resource,
        )
    else:
        raise OAuthError("unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
    return JSONResponse(issued.body(), headers=NO_STORE)
