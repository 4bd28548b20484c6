"""Reading request bodies with a cap: a client cannot make the authorization server buffer megabytes.

Starlette's `request.body()` and `request.form()` read everything the client sends; these stop at
`limit` bytes (a declared Content-Length over it is refused before reading anything).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.datastructures import FormData
from starlette.requests import Request

from castproxy.auth.server.errors import OAuthError

__all__ = ["capped_body", "capped_form"]

MAX_FORM_BYTES = 16 * 1024


async def capped_body(request: Request, limit: int, *, error: str = "invalid_request") -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise OAuthError(error, f"request body larger than {limit} bytes", status=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise OAuthError(error, f"request body larger than {limit} bytes", status=413)
    return bytes(body)


async def capped_form(request: Request, limit: int = MAX_FORM_BYTES) -> FormData:
    """An application/x-www-form-urlencoded body, parsed the way Starlette does, read at most `limit` bytes."""
    body = await capped_body(request, limit)
    try:
        fields = parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="utf-8")
        return FormData([(name, value) for name, value in fields])
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "the form body is not valid") from None
