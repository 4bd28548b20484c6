"""What every endpoint of the authorization server shares: URLs, the current workspaces, the services.

`workspaces` is replaced whole on each config reload (one assignment), so a request sees either the
old set or the new one, never a mix.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from castproxy.access.policy import Rule
from castproxy.access.signin import CompanySignIn
from castproxy.auth.events import NO_EVENTS, AuthEvents
from castproxy.auth.server.clients import ClientRegistry
from castproxy.auth.server.limits import REGISTRATIONS, RateLimiter, SignInBudget
from castproxy.auth.server.records import canonical_resource
from castproxy.auth.server.tokens import TokenService
from castproxy.config.loader import UPSTREAM_CALLBACK_PATH
from castproxy.config.model import OAuth2Auth
from castproxy.serve.origins import normalize_origin
from castproxy.store.base import Store

__all__ = ["UPSTREAM_CALLBACK_PATH", "AuthServer", "UpstreamSignIn", "WorkspaceEntry", "canonical_resource"]


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


class AuthServer:
    def __init__(
        self,
        *,
        store: Store,
        public_url: str,
        clients: ClientRegistry,
        tokens: TokenService,
        registration_limiter: RateLimiter | None = None,
        events: AuthEvents = NO_EVENTS,
    ) -> None:
        self.store = store
        self.events = events  # sign-ins and consent, for the audit trail and metrics
        # POST /register per caller address; URL client_id document fetches are limited by the DocumentFetcher.
        self.registrations = RateLimiter(REGISTRATIONS) if registration_limiter is None else registration_limiter
        # Sign-ins started at /authorize (each leaves records in the store for minutes): per caller and in total.
        self.sign_ins = SignInBudget()
        self.issuer = public_url.rstrip("/")
        self.clients = clients
        self.tokens = tokens
        self.workspaces: Mapping[str, WorkspaceEntry] = {}
        # Set by the AuthBridge: why the secret key cannot read the store (no sign-in can start then), or None.
        self.key_problem: Callable[[], Awaitable[str | None]] | None = None
        # server.identity: the company sign-in that comes before every consent (castproxy.access), or None.
        self.identity: CompanySignIn | None = None
        self.secure_cookies = self.issuer.startswith("https://")
        parts = urlsplit(self.issuer)
        # Normalised (lower case, default port dropped) as browsers send it in `Origin`.
        self.origin = normalize_origin(self.issuer) or f"{parts.scheme}://{parts.netloc}"
        self.base_path = parts.path  # non-empty when the proxy is published under a path prefix

    def url(self, path: str) -> str:
        return self.issuer + path

    def resource_url(self, workspace: str) -> str:
        return self.url(f"/mcp/{workspace}")

    def resource_metadata_url(self, workspace: str) -> str:
        return self.url(f"/.well-known/oauth-protected-resource/mcp/{workspace}")

    def sign_in_workspace(self, name: str) -> WorkspaceEntry | None:
        entry = self.workspaces.get(name)
        return entry if entry is not None and entry.sign_in else None

    def sign_in_workspaces(self) -> list[WorkspaceEntry]:
        return [entry for entry in self.workspaces.values() if entry.sign_in]

    def workspace_for_resource(self, resource: str) -> WorkspaceEntry | None:
        wanted = canonical_resource(resource)
        for entry in self.sign_in_workspaces():
            if canonical_resource(entry.resource) == wanted:
                return entry
        return None
