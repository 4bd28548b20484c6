"""The one object the serving layer talks to for oauth2 workspaces.

It owns castproxy's authorization server (routes), keeps one UpstreamOAuth per oauth2 workspace
across config reloads, turns an MCP request's castproxy token into the caller's upstream grant id
(`authenticate`), and turns a grant id into upstream credentials (`credentials_for`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping

import httpx2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from castproxy.access.oidc import IdentityProvider
from castproxy.access.policy import Caller, Rule
from castproxy.access.sessions import IdentitySessions
from castproxy.access.signin import CompanySignIn
from castproxy.auth.credentials import SignInRequired, UpstreamCredentials, parse_bearer, set_bearer
from castproxy.auth.events import NO_EVENTS, AuthEvents
from castproxy.auth.login import LoginClients
from castproxy.auth.server.auth_server import AuthServer
from castproxy.auth.server.clients import ClientRegistry
from castproxy.auth.server.documents import DocumentFetcher
from castproxy.auth.server.errors import OAuthError, no_sign_in
from castproxy.auth.server.limits import RateLimiter
from castproxy.auth.server.records import GrantRecord
from castproxy.auth.server.routes import build_routes
from castproxy.auth.server.token_service import InvalidToken, TokenService
from castproxy.auth.server.workspaces import UpstreamSignIn, WorkspaceEntry
from castproxy.config.loader import UPSTREAM_CALLBACK_PATH
from castproxy.config.model import IdentitySettings, LoginAuth, OAuth2Auth
from castproxy.store.base import Store, StoreError
from castproxy.store.crypto import Cipher
from castproxy.store.keycheck import key_problem
from castproxy.tls import outbound_tls

__all__ = ["AuthBridge"]

log = logging.getLogger("castproxy.auth")

# Builds the upstream OAuth client of one workspace: (workspace, auth, callback_url) -> UpstreamSignIn.
UpstreamFactory = Callable[[str, OAuth2Auth, str], UpstreamSignIn]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AuthBridge:
    def __init__(
        self,
        *,
        store: Store,
        cipher: Cipher,
        public_url: str,
        upstream_factory: UpstreamFactory | None = None,
        document_fetcher: DocumentFetcher | None = None,
        registration_limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.time,
        events: AuthEvents = NO_EVENTS,
        identity: IdentitySettings | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events  # sign-ins, consent, sign-outs, revocations, refreshes (castproxy.observe)
        self._cipher = cipher
        self._http = httpx2.AsyncClient(timeout=10.0, trust_env=False, verify=outbound_tls())
        self._fetcher = document_fetcher or DocumentFetcher()
        self._factory = upstream_factory or self._real_upstream
        self._base_urls: dict[str, str] = {}  # workspace -> base URL, for the upstream clients update() makes
        self.tokens = TokenService(store, on_grant_revoked=self._revoke_upstream, on_narrow=self._narrow_upstream,
                                   events=events, clock=clock)
        self.server = AuthServer(
            store=store,
            public_url=public_url,
            clients=ClientRegistry(store, self._fetcher, clock),
            tokens=self.tokens,
            registration_limiter=registration_limiter,
            events=events,
        )
        self.callback_url = self.server.url(UPSTREAM_CALLBACK_PATH)
        # `auth.type: login` workspaces: no sign-in, but their tokens live in the same store and cipher.
        self.logins = LoginClients(store=store, cipher=cipher, http=self._http, clock=clock, events=events)
        self._key_checked = False
        self._key_problem: str | None = None
        self.server.key_problem = self.key_problem
        if identity is not None:  # company sign-in before every consent (castproxy.access)
            sessions = IdentitySessions(store, cipher, lifetime=identity.session_lifetime, clock=clock)
            self.server.identity = CompanySignIn(IdentityProvider(identity, clock=clock), sessions,
                                                 public_url=public_url)

    # --- wiring -------------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return build_routes(self.server)

    def update(
        self,
        workspaces: Mapping[str, OAuth2Auth],
        logins: Mapping[str, LoginAuth] | None = None,
        base_urls: Mapping[str, str] | None = None,
        *,
        sign_in_only: Iterable[str] = (),
        access: Mapping[str, Rule | None] | None = None,
    ) -> None:
        """Take the oauth2 and login workspaces of a new config snapshot (with the base URL each oauth2
        workspace's tokens go to); unchanged ones keep their upstream client. `sign_in_only` are the
        shared-credential workspaces whose callers sign in at castproxy (server.identity); `access` is who may
        connect to each workspace, checked at /authorize."""
        rules = access or {}
        if logins is not None:
            self.logins.update(logins)
        current = self.server.workspaces
        fresh: dict[str, WorkspaceEntry] = {}
        for name, auth in workspaces.items():
            base_url = (base_urls or {}).get(name, "")
            old = current.get(name)
            if old is not None and old.auth == auth and old.base_url == base_url:
                fresh[name] = dataclasses.replace(old, access=rules.get(name))
                continue
            self._base_urls[name] = base_url
            fresh[name] = WorkspaceEntry(
                name=name,
                auth=auth,
                upstream=self._factory(name, auth, self.callback_url),
                resource=self.server.resource_url(name),
                resource_metadata_url=self.server.resource_metadata_url(name),
                base_url=base_url,
                access=rules.get(name),
            )
        for name in sign_in_only:
            shared = fresh.get(name)  # a client_credentials workspace keeps its upstream client for its service token
            fresh[name] = dataclasses.replace(shared, identity_sign_in=True) if shared is not None else WorkspaceEntry(
                name=name, auth=None, upstream=None, resource=self.server.resource_url(name),
                resource_metadata_url=self.server.resource_metadata_url(name), access=rules.get(name),
                identity_sign_in=True)
        self.server.workspaces = fresh

    async def key_problem(self) -> str | None:
        """Why this server's secret key cannot read the store, or None. Checked once per process (the key is
        fixed until a restart); a store that cannot be reached is not a key problem and is asked again."""
        if not self._key_checked:
            try:
                problem = await key_problem(self._store, self._cipher)
            except StoreError:
                return None
            self._key_checked, self._key_problem = True, problem
            if problem is not None:
                log.error("the secret key cannot read the store: %s", problem)
        return self._key_problem

    async def close(self) -> None:
        if self.server.identity is not None:
            await self.server.identity.close()
        await self._fetcher.close()
        await self._http.aclose()

    # --- the MCP endpoint's side --------------------------------------------------------------------

    async def authenticate(self, request: Request, workspace: str) -> str | Response:
        """The upstream grant id behind the caller's castproxy token for `workspace`, or the response to send."""
        outcome = await self.authenticate_caller(request, workspace)
        return outcome if isinstance(outcome, Response) else outcome[0]

    async def authenticate_caller(self, request: Request, workspace: str) -> tuple[str, Caller] | Response:
        """The grant id behind the caller's castproxy token for `workspace` and who the caller is (person,
        client, granted scopes: read from the token's record, no further store look-up), or the response to send.

        Only the Authorization header is read: a token in the query string is refused (RFC 9700 §4.3.2),
        and only castproxy's own tokens are recognised, so an upstream token is never accepted here.
        """
        entry = self.server.sign_in_workspace(workspace)
        if entry is None:
            return no_sign_in(workspace)
        problem = await self.key_problem()
        if problem is not None:  # fail closed: the stored sign-ins are kept for the right key
            return JSONResponse(
                {"error": "store_key_mismatch", "message": problem}, status_code=503, headers={"Retry-After": "60"}
            )
        if "access_token" in request.query_params:
            return self.challenge(
                workspace,
                "invalid_request",
                "send the access token in the Authorization header, not the URL",
                status=400,
            )
        token = parse_bearer(request.headers.get("authorization"))
        if token is None:
            return self.challenge(workspace)
        try:
            record = await self.tokens.authenticate(token, workspace)
        except InvalidToken as exc:
            return self.challenge(workspace, "invalid_token", str(exc))
        caller = Caller(subject=record.subject or None, email=record.email or None, groups=frozenset(record.groups),
                        client_id=record.client_id, scopes=frozenset(record.scopes) if entry.per_user else None)
        return record.grant_id, caller

    def challenge(self, workspace: str, error: str | None = None, description: str = "", status: int = 401) -> Response:
        """The 401 that sends an MCP client to sign in (RFC 9728 §5.1, RFC 6750 §3)."""
        entry = self.server.sign_in_workspace(workspace)
        parts = []
        if error:
            parts += [f"error={_quote(error)}", f"error_description={_quote(description)}"]
        parts.append(f"resource_metadata={_quote(self.server.resource_metadata_url(workspace))}")
        if entry is not None and entry.scopes:
            parts.append(f"scope={_quote(' '.join(entry.scopes))}")
        body = {"error": error or "unauthorized", "error_description": description or "sign-in required"}
        return JSONResponse(
            body,
            status_code=status,
            headers={"WWW-Authenticate": "Bearer " + ", ".join(parts), "Cache-Control": "no-store"},
        )

    def insufficient_scope(self, workspace: str, scopes: Iterable[str], tool: str) -> Response:
        """The 403 that sends an MCP client to authorize again with more scopes (MCP authorization 2025-11-25,
        scope challenge; RFC 6750 §3.1): `scopes` are those held plus those the tool needs."""
        wanted = " ".join(scopes)
        description = f"tool {tool[:64]} needs more scope than this sign-in was granted"
        parts = [f"error={_quote('insufficient_scope')}", f"scope={_quote(wanted)}",
                 f"resource_metadata={_quote(self.server.resource_metadata_url(workspace))}",
                 f"error_description={_quote(description)}"]
        return JSONResponse(
            {"error": "insufficient_scope", "error_description": description, "scope": wanted},
            status_code=403,
            headers={"WWW-Authenticate": "Bearer " + ", ".join(parts), "Cache-Control": "no-store"},
        )

    def credentials_for(self, workspace: str) -> UpstreamCredentials:
        login = self.logins.credentials_for(workspace)
        if login is not None:
            return login
        entry = self.server.workspaces.get(workspace)
        if entry is None or entry.upstream is None or entry.auth is None:  # removed by a reload during a call
            return _Gone(workspace)
        return _UpstreamTokenCredentials(entry, self.tokens)

    # --- internals ----------------------------------------------------------------------------------

    def _real_upstream(self, name: str, auth: OAuth2Auth, callback_url: str) -> UpstreamSignIn:
        from castproxy.auth.upstream_oauth import UpstreamOAuth

        return UpstreamOAuth(
            name,
            auth,
            store=self._store,
            cipher=self._cipher,
            callback_url=callback_url,
            http=self._http,
            base_url=self._base_urls.get(name) or None,
            events=self._events,
            clock=self._clock,
        )

    async def _revoke_upstream(self, grant: GrantRecord) -> None:
        entry = self.server.workspaces.get(grant.workspace)
        if entry is None or entry.upstream is None:
            return
        try:
            await entry.upstream.revoke(grant.grant_id)
        except Exception as exc:  # the castproxy side is already revoked; the upstream grant is best effort
            log.warning("revoking the upstream grant of workspace %s failed: %s", grant.workspace, type(exc).__name__)

    async def _narrow_upstream(self, grant: GrantRecord, scopes: tuple[str, ...]) -> None:
        """A client narrowed its sign-in: the upstream grant behind it must not keep the wider scopes."""
        entry = self.server.sign_in_workspace(grant.workspace)
        if entry is None:
            raise OAuthError("invalid_grant", f"workspace {grant.workspace} no longer uses sign-in")
        if entry.upstream is None:
            return  # castproxy's own sign-in: nothing upstream to narrow
        try:
            await entry.upstream.narrow(grant.grant_id, scopes)
        except SignInRequired:
            await self.tokens.revoke_grant(grant.grant_id, upstream=False, reason="the upstream grant is gone")
            message = "the upstream sign-in behind this refresh token is gone; sign in again"
            raise OAuthError("invalid_grant", message) from None


class _UpstreamTokenCredentials:
    """Sets `Authorization: Bearer <upstream token>`; a grant the upstream dropped ends the castproxy sign-in too.

    Given `refused` (the token the upstream answered 401 to), it renews that token (one refresh
    however many calls were refused with it) instead of setting it again.
    """

    protected_headers = frozenset({"authorization"})

    def __init__(self, entry: WorkspaceEntry, tokens: TokenService) -> None:
        self._entry = entry
        self._tokens = tokens

    async def apply(self, headers: dict[str, str], grant_id: str | None, *, refused: str | None = None) -> None:
        upstream = self._entry.upstream
        if upstream is None:  # an AS workspace without upstream (castproxy's own sign-in): no upstream token
            raise SignInRequired(f"workspace {self._entry.name} has no upstream OAuth")
        if not self._entry.per_user:
            token = await upstream.service_token(rejected=refused)
        else:
            if grant_id is None:
                raise SignInRequired(f"workspace {self._entry.name} needs a signed-in caller")
            try:
                token = await upstream.access_token(grant_id, rejected=refused)
            except SignInRequired:
                # The upstream grant is gone (invalid_grant, or a refused token that cannot be
                # refreshed): the castproxy tokens bound to it must answer 401 from now on, so the
                # MCP client signs in again.
                await self._tokens.revoke_grant(grant_id, upstream=False, reason="the upstream grant is gone")
                raise
        set_bearer(headers, token)


class _Gone:
    protected_headers = frozenset({"authorization"})

    def __init__(self, workspace: str) -> None:
        self._workspace = workspace

    async def apply(self, headers: dict[str, str], grant_id: str | None, *, refused: str | None = None) -> None:
        raise SignInRequired(f"workspace {self._workspace} no longer uses OAuth in the current config")
