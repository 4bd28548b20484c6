"""CORS for browser-based MCP clients on an allowed origin (the Origin check itself is in origins.py).

Only origins that already passed the check get CORS headers, and the origin is echoed (never `*`),
so a page elsewhere can neither call the endpoint nor read its answers.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Message, Send

__all__ = ["preflight", "with_cors"]

ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
ALLOW_HEADERS = (
    "Authorization, Content-Type, Accept, X-API-Key, MCP-Protocol-Version, Mcp-Session-Id, "
    "Mcp-Method, Mcp-Name, Last-Event-ID"
)
EXPOSE_HEADERS = "Mcp-Session-Id, WWW-Authenticate, MCP-Protocol-Version"


def preflight(origin: str, requested_headers: str | None) -> Response:
    """Answer an OPTIONS preflight; `Mcp-Param-*` headers vary per tool, so requested ones are echoed."""
    allow_headers = ALLOW_HEADERS
    if requested_headers:
        extra = [h.strip() for h in requested_headers.split(",") if h.strip().lower().startswith("mcp-param-")]
        allow_headers = ", ".join([ALLOW_HEADERS, *extra])
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": allow_headers,
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        },
    )


def with_cors(send: Send, origin: str) -> Send:
    """Wrap `send` so the response carries the CORS headers for `origin`."""
    extra = [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
        (b"vary", b"Origin"),
    ]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped
