"""The one interface every upstream auth kind implements: add credentials to an outgoing request.

The serving layer calls `apply` for each tool call; `protected_headers` are the (lower-case)
header names the credential sets, which tool arguments may never set or override.
"""

from __future__ import annotations

from typing import Protocol


class SignInRequired(Exception):
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
