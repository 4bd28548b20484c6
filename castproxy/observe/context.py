"""Who is calling, per MCP request: what the audit trail, the metrics and the spans need to know of it.

The `/mcp` endpoint sets one `RequestInfo` for each admitted request (a context variable, so the SDK's
handler tasks and any meta-tool path see the same object); the tool caller and the upstream forwarder
fill in what they learn (upstream status and bytes). Outside a request there is none, and the audit
record simply names no caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

__all__ = ["CURRENT", "RequestInfo", "key_id"]


@dataclass(slots=True)
class RequestInfo:
    workspace: str
    client_id: str | None = None  # the MCP client's OAuth client_id (signed-in workspaces)
    subject: str | None = None  # the signed-in person, when castproxy knows it
    grant: str | None = None  # short hash of the sign-in (grant) the call runs under, never the grant id
    key_id: str | None = None  # which inbound API key was presented: a short hash, never the key
    address: str | None = None  # the caller's address as the server saw it
    arguments: Mapping[str, Any] | None = None  # the call's arguments: only their NAMES may be recorded
    upstream_status: int | None = None  # the last upstream answer's status
    upstream_bytes: int = 0  # body bytes the upstream sent back (all sends of this call)
    upstream_sends: int = 0
    outcome: str | None = None  # the tool call's outcome, for the server span
    span: Any = None  # the request's server span, when tracing is on


CURRENT: ContextVar[RequestInfo | None] = ContextVar("castproxy_request", default=None)


def current() -> RequestInfo | None:
    return CURRENT.get()


def key_id(digest: bytes) -> str:
    """The id an inbound key is recorded under: 8 hex digits of its sha256 digest (the key never is)."""
    return "key-" + digest.hex()[:8]
