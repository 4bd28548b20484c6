"""Inbound API keys: a workspace with `inbound.api_keys` only answers callers presenting one of them.

The key arrives as `Authorization: Bearer KEY` or `X-API-Key: KEY`. Only sha256 digests of the
configured keys are kept, and the presented key's digest is compared to each in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from castproxy.access.build import hash_key
from castproxy.access.policy import Caller
from castproxy.auth.credentials import parse_bearer

if TYPE_CHECKING:
    from castproxy.serve.snapshot import WorkspaceRuntime

__all__ = [
    "bearer_protected", "key_accepted", "key_caller", "listing_for", "matched_key", "presented_key", "unauthorized",
]


def presented_key(headers: Mapping[str, str]) -> str | None:
    bearer = parse_bearer(headers.get("authorization"))
    if bearer is not None:
        return bearer
    key = headers.get("x-api-key")
    return key.strip() if key else None


def key_accepted(headers: Mapping[str, str], key_hashes: Sequence[bytes]) -> bool:
    return matched_key(headers, key_hashes) is not None


def matched_key(headers: Mapping[str, str], key_hashes: Sequence[bytes]) -> bytes | None:
    """The digest of the configured key the caller presented (what the audit trail names it by), else None."""
    key = presented_key(headers)
    if key is None:
        return None
    digest = hash_key(key)
    matched: bytes | None = None
    for expected in key_hashes:  # no early exit: the time taken does not say which key matched
        if hmac.compare_digest(digest, expected):
            matched = expected
    return matched


def unauthorized(workspace: str) -> JSONResponse:
    return JSONResponse(
        {
            "error": "unauthorized",
            "message": f"workspace '{workspace}' needs an API key: "
            "send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
        },
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="castproxy"'},
    )


def bearer_protected(
    endpoint: Callable[[Request], Awaitable[Response]], token: str | None, realm: str
) -> Callable[[Request], Awaitable[Response]]:
    """`endpoint`, answering only `Authorization: Bearer TOKEN` when a token is set (server.metrics_token)."""
    if not token:
        return endpoint
    expected = (hash_key(token),)

    async def guarded(request: Request) -> Response:
        if parse_bearer(request.headers.get("authorization")) is None or not key_accepted(request.headers, expected):
            return JSONResponse(
                {"error": "unauthorized", "message": f"{realm} needs 'Authorization: Bearer TOKEN'"},
                status_code=401,
                headers={"WWW-Authenticate": f'Bearer realm="{realm}"'},
            )
        return await endpoint(request)

    return guarded


# -- callers (castproxy/access, issue 14) ------------------------------------------------------------------

def key_caller(workspace: WorkspaceRuntime, headers: Mapping[str, str]) -> Caller:
    """The caller an accepted inbound key is: a named key's identity, else a key named by its digest's start."""
    key = presented_key(headers) or ""
    digest = hash_key(key)
    return workspace.key_callers.get(digest) or Caller(key_name=f"key-{digest[:4].hex()}")


def listing_for(workspace: WorkspaceRuntime, caller: Caller) -> Mapping[str, Any]:
    """The tools/list answer for this caller: the snapshot's, without the tools its policy hides."""
    access = workspace.access
    return workspace.listing if access is None else access.listing_for(caller, workspace.listing)
