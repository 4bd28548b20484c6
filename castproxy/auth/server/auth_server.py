"""`AuthServer`: what every endpoint of the authorization server shares (URLs, workspaces, services).

`workspaces` is replaced whole on each config reload (one assignment), so a request sees either the
old set or the new one, never a mix.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

from castproxy.access.signin import CompanySignIn
from castproxy.auth.events import NO_EVENTS, AuthEvents
from castproxy.auth.server.clients import ClientRegistry
from castproxy.auth.server.limits import REGISTRATIONS, RateLimiter, SignInBudget
from castproxy.auth.server.records import canonical_resource
from castproxy.auth.server.token_service import TokenService
from castproxy.auth.server.workspaces import WorkspaceEntry
from castproxy.origins import normalize_origin
from castproxy.store.base import Store

__all__ = ["AuthServer"]


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
