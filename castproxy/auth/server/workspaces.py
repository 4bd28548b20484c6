"""The workspaces castproxy's authorization server signs callers in for, and the upstream sign-in it drives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from castproxy.access.policy import Rule
from castproxy.config.model import OAuth2Auth

__all__ = ["PendingUpstream", "SignInOutcome", "UpstreamSignIn", "WorkspaceEntry"]


class SignInOutcome(Protocol):
    @property
    def grant_id(self) -> str: ...
    @property
    def context(self) -> dict[str, Any]: ...


class PendingUpstream(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def state(self) -> str: ...


class UpstreamSignIn(Protocol):
    """The part of castproxy.auth.upstream_oauth.UpstreamOAuth the authorization server drives."""

    async def start_sign_in(
        self, context: dict[str, Any], *, scopes: Sequence[str] | None = None
    ) -> PendingUpstream: ...

    async def complete_sign_in(self, params: Mapping[str, str], *, state: str | None = None) -> SignInOutcome: ...

    async def access_token(self, grant_id: str, *, rejected: str | None = None) -> str: ...

    async def service_token(self, *, rejected: str | None = None) -> str: ...

    async def revoke(self, grant_id: str) -> None: ...

    async def narrow(self, grant_id: str, scopes: Sequence[str]) -> None: ...


@dataclass(frozen=True)
class WorkspaceEntry:
    name: str
    auth: OAuth2Auth | None  # None: a shared-credential workspace whose callers sign in at castproxy (identity)
    upstream: UpstreamSignIn | None
    resource: str
    resource_metadata_url: str
    base_url: str = ""  # the upstream API its tokens are sent to (part of what a grant is bound to)
    access: Rule | None = None  # who may connect (the workspace's `access`), checked at /authorize
    identity_sign_in: bool = False  # a shared-credential workspace whose callers sign in at castproxy (identity)

    @property
    def per_user(self) -> bool:
        """Each user signs in at the upstream (authorization_code); otherwise the upstream grant is shared."""
        return self.auth is not None and self.auth.grant == "authorization_code"

    @property
    def sign_in(self) -> bool:
        """Callers need castproxy's tokens: per-user upstream sign-in, or castproxy's own (server.identity)."""
        return self.per_user or self.identity_sign_in

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.auth.scopes) if self.auth is not None and self.per_user else ()
