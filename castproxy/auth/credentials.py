"""The one interface every upstream auth kind implements: add credentials to an outgoing request.

The serving layer calls `apply` for each tool call; `protected_headers` are the (lower-case)
header names the credential sets, which tool arguments may never set or override. `parse_bearer`,
`bearer_token` and `set_bearer` read and write `Authorization: Bearer TOKEN` for every part that handles one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from castproxy.errors import CastproxyError

__all__ = ["AuthError", "SignInRequired", "UpstreamCredentials", "bearer_token", "parse_bearer", "set_bearer"]


class AuthError(CastproxyError):
    """The root of auth/'s errors (upstream credentials and castproxy's authorization server)."""


class SignInRequired(AuthError):
    """No usable upstream grant for this caller: the MCP client must sign in (again)."""


class UpstreamCredentials(Protocol):
    protected_headers: frozenset[str]

    async def apply(self, headers: dict[str, str], grant_id: str | None, *, refused: str | None = None) -> None:
        """Add credential headers in place. `grant_id` names the caller's per-user grant
        (authorization_code workspaces) and is None otherwise. `refused` is the Bearer token the
        upstream just answered 401 to: credentials that can renew it do so (once, however many
        calls were refused with it) before setting headers; static credentials ignore it.
        Raises SignInRequired."""
        ...


def parse_bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` value; None for any other value or none."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The Bearer token of the first Authorization header of a plain dict (names in any letter case)."""
    for name, value in headers.items():
        if name.lower() == "authorization":
            return parse_bearer(value)
    return None


def set_bearer(headers: dict[str, str], token: str) -> None:
    """Replace any Authorization header (in any letter case) with `Bearer token`."""
    for name in [name for name in headers if name.lower() == "authorization"]:
        del headers[name]
    headers["Authorization"] = f"Bearer {token}"
