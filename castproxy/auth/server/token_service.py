"""castproxy's own codes and tokens: issuing, redeeming, rotating, validating, revoking.

All are opaque random strings stored only as hashes. Every one belongs to a grant (one sign-in,
keyed by the upstream grant id); deleting the grant record kills every token issued from it, which
is how reuse of a code or of a rotated refresh token (RFC 9700 §2.2.2, §4.14) revokes the family.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from castproxy.auth.credentials import AuthError
from castproxy.auth.events import NO_EVENTS, AuthEvents, grant_ref
from castproxy.auth.pkce import s256_challenge
from castproxy.auth.server.errors import OAuthError
from castproxy.auth.server.records import (
    NS_ACCESS,
    NS_CODE,
    NS_CODE_USED,
    NS_GRANT,
    NS_REFRESH,
    NS_REFRESH_USED,
    CodeRecord,
    GrantRecord,
    TokenRecord,
    UsedMarker,
    canonical_resource,
)
from castproxy.store.base import Store
from castproxy.store.crypto import hash_token

__all__ = ["InvalidToken", "TokenService"]

log = logging.getLogger("castproxy.auth")

ACCESS_TOKEN_LIFETIME = 3600.0
REFRESH_TOKEN_LIFETIME = 30 * 86400.0
CODE_LIFETIME = 60.0
# How long a redeemed code is remembered, so that a second attempt is recognised as reuse.
CODE_REUSE_MEMORY = 600.0

_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    scopes: tuple[str, ...]

    def body(self) -> dict[str, object]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": " ".join(self.scopes),
        }


class InvalidToken(AuthError):
    """The presented access token is not valid here; the message is safe to send to the client."""


class TokenService:
    def __init__(
        self,
        store: Store,
        *,
        on_grant_revoked: Callable[[GrantRecord], Awaitable[None]] | None = None,
        events: AuthEvents = NO_EVENTS,
        on_narrow: Callable[[GrantRecord, tuple[str, ...]], Awaitable[None]] | None = None,
        access_lifetime: float = ACCESS_TOKEN_LIFETIME,
        refresh_lifetime: float = REFRESH_TOKEN_LIFETIME,
        code_lifetime: float = CODE_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.clock = clock  # epoch seconds that token and sign-in expiry is read against (the AuthBridge's)
        self._on_grant_revoked = on_grant_revoked
        self.events = events
        self._on_narrow = on_narrow
        self.access_lifetime = access_lifetime
        self.refresh_lifetime = refresh_lifetime
        self.code_lifetime = code_lifetime

    # --- grants -------------------------------------------------------------------------------------

    async def start_grant(self, grant: GrantRecord) -> None:
        await self._store.put(NS_GRANT, grant.grant_id, grant.encode(), ttl=self.refresh_lifetime)

    async def grant(self, grant_id: str) -> GrantRecord | None:
        return GrantRecord.decode(await self._store.get(NS_GRANT, grant_id))

    async def grants(self, limit: int = 10_000) -> list[GrantRecord]:
        """The live sign-ins (for the admin page and the active sign-ins gauge), at most `limit`."""
        found = [GrantRecord.decode(blob) for _, blob in await self._store.items(NS_GRANT, limit=limit)]
        return [grant for grant in found if grant is not None]

    async def revoke_grant(
        self, grant_id: str, *, upstream: bool = True, reason: str = "revoked", event: str = "revocation"
    ) -> None:
        """Kill every token issued from this sign-in; with `upstream`, also revoke the upstream grant.

        `event` is what the audit trail calls it: sign_out when the client asked, revocation otherwise."""
        grant = GrantRecord.decode(await self._store.take(NS_GRANT, grant_id))
        if grant is None:
            return
        self.events.sign_in_ended(grant.workspace, event=event, client_id=grant.client_id, grant=grant_ref(grant_id),
                                  reason=reason, subject=grant.subject or None)
        log.warning(
            "sign-in ended: %s (workspace %s, client %s, grant %s)",
            reason,
            grant.workspace,
            grant.client_id,
            hash_token(grant_id)[:12],
        )
        if upstream and self._on_grant_revoked is not None:
            await self._on_grant_revoked(grant)

    # --- authorization codes ------------------------------------------------------------------------

    async def issue_code(self, record: CodeRecord) -> str:
        code = "cpc_" + secrets.token_urlsafe(32)
        await self._store.put(NS_CODE, hash_token(code), record.encode(), ttl=self.code_lifetime)
        return code

    async def redeem_code(
        self, code: str, *, client_id: str, redirect_uri: str, code_verifier: str, resource: str | None = None
    ) -> IssuedTokens:
        """`resource`, when the client sends one (canonical form), must be the code's workspace URL."""
        key = hash_token(code)
        record = CodeRecord.decode(await self._store.take(NS_CODE, key))
        if record is None:
            used = UsedMarker.decode(await self._store.get(NS_CODE_USED, key))
            if used is not None:
                await self.revoke_grant(used.grant_id, reason="authorization code reused")
                raise OAuthError(
                    "invalid_grant",
                    "authorization code was already used; the sign-in it started has been revoked",
                )
            raise OAuthError("invalid_grant", "authorization code is unknown or expired")
        # The code is spent whatever happens next: a second try is reuse.
        await self._store.put(NS_CODE_USED, key, UsedMarker(record.grant_id).encode(), ttl=CODE_REUSE_MEMORY)
        if record.client_id != client_id:
            await self.revoke_grant(record.grant_id, reason="authorization code presented by another client")
            raise OAuthError("invalid_grant", "authorization code was issued to another client")
        if record.redirect_uri != redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the one in the authorization request")
        if not _VERIFIER.match(code_verifier):
            raise OAuthError("invalid_grant", "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]")
        if not secrets.compare_digest(s256_challenge(code_verifier), record.code_challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge (PKCE S256)")
        if resource is not None and resource != canonical_resource(record.resource):
            raise OAuthError("invalid_target", f"resource differs from the one authorized ({record.resource})")
        grant = await self.grant(record.grant_id)
        if grant is None:
            raise OAuthError("invalid_grant", "the sign-in behind this code was revoked")
        return await self._issue(grant, record.scopes)

    # --- refresh tokens -----------------------------------------------------------------------------

    async def refresh(
        self, refresh_token: str, *, client_id: str, scopes: tuple[str, ...] | None, resource: str | None = None
    ) -> IssuedTokens:
        """Rotate a refresh token. Every check runs before the token is spent, so a refused request (wrong
        scope, resource or client) leaves it usable; a narrower `scopes` narrows the whole sign-in, upstream
        grant included, for good."""
        key = hash_token(refresh_token)
        record = TokenRecord.decode(await self._store.get(NS_REFRESH, key))
        if record is None:
            used = UsedMarker.decode(await self._store.get(NS_REFRESH_USED, key))
            if used is not None:
                await self.revoke_grant(used.grant_id, reason="rotated refresh token reused")
                raise OAuthError(
                    "invalid_grant", "refresh token was already used (rotated); the sign-in has been revoked"
                )
            raise OAuthError("invalid_grant", "refresh token is unknown, expired or revoked")
        if record.client_id != client_id:
            # Not spent: the client_id of a public client proves nothing, a mix-up must not end the sign-in.
            raise OAuthError("invalid_grant", "refresh token was issued to another client")
        if record.expires_at <= self.clock():
            raise OAuthError("invalid_grant", "refresh token expired")
        grant = await self.grant(record.grant_id)
        if grant is None:
            raise OAuthError("invalid_grant", "the sign-in behind this refresh token was revoked; sign in again")
        if grant.person_until and grant.person_until <= self.clock():
            # The company sign-in is as old as identity.session_lifetime: the person (and their groups) must be
            # vouched for again by the identity provider, so policies follow changes made there.
            await self.revoke_grant(grant.grant_id, reason="the company sign-in behind it expired")
            raise OAuthError("invalid_grant", "the company sign-in behind this refresh token expired; sign in again")
        if resource is not None and resource != canonical_resource(grant.resource):
            raise OAuthError("invalid_target", f"resource differs from the one authorized ({grant.resource})")
        wanted = record.scopes if scopes is None else tuple(dict.fromkeys(scopes))
        extra = sorted(set(wanted) - set(record.scopes))
        if extra:
            raise OAuthError("invalid_scope", f"scope beyond the original grant: {' '.join(extra)}")
        if set(wanted) < set(grant.scopes):
            await self._narrow_upstream(grant, wanted)
            grant = dataclasses.replace(grant, scopes=wanted)
        # Spent only now, atomically: of two refreshes racing with one token, the second counts as reuse.
        if await self._store.take(NS_REFRESH, key) is None:
            await self.revoke_grant(record.grant_id, reason="rotated refresh token reused")
            raise OAuthError("invalid_grant", "refresh token was already used (rotated); the sign-in has been revoked")
        await self._store.put(NS_REFRESH_USED, key, UsedMarker(record.grant_id).encode(), ttl=self.refresh_lifetime)
        # Keep the family alive as long as it is being refreshed (and record a narrowing).
        await self.start_grant(grant)
        return await self._issue(grant, wanted)

    async def _narrow_upstream(self, grant: GrantRecord, scopes: tuple[str, ...]) -> None:
        if self._on_narrow is None:
            return
        try:
            await self._on_narrow(grant, scopes)
        except OAuthError:
            raise
        except Exception as exc:  # the upstream's own answer is logged by the upstream client; say what to do
            log.warning("narrowing the upstream grant of workspace %s failed: %s", grant.workspace, type(exc).__name__)
            raise OAuthError(
                "invalid_scope",
                f"the upstream sign-in could not be narrowed to {' '.join(scopes) or 'no scope'}; "
                "sign in again asking for that scope",
            ) from None

    # --- access tokens ------------------------------------------------------------------------------

    async def authenticate(self, access_token: str, workspace: str) -> TokenRecord:
        """The record of a live access token issued for `workspace`; raises InvalidToken otherwise."""
        record = TokenRecord.decode(await self._store.get(NS_ACCESS, hash_token(access_token)))
        if record is None:
            raise InvalidToken("the access token is unknown, expired or revoked")
        if record.workspace != workspace:
            raise InvalidToken("the access token was issued for another workspace")
        if record.expires_at <= self.clock():
            raise InvalidToken("the access token expired")
        if await self._store.get(NS_GRANT, record.grant_id) is None:
            raise InvalidToken("the sign-in behind this access token was revoked; sign in again")
        return record

    async def revoke_token(self, token: str, *, client_id: str | None) -> None:
        """RFC 7009: an access token dies alone; a refresh token takes its whole sign-in with it."""
        key = hash_token(token)
        access = TokenRecord.decode(await self._store.get(NS_ACCESS, key))
        if access is not None:
            _check_owner(access, client_id)
            await self._store.delete(NS_ACCESS, key)
            self.events.token_revoked(access.workspace, client_id=access.client_id, grant=grant_ref(access.grant_id))
            return
        refresh = TokenRecord.decode(await self._store.get(NS_REFRESH, key))
        if refresh is not None:
            _check_owner(refresh, client_id)
            await self._store.delete(NS_REFRESH, key)
            await self.revoke_grant(refresh.grant_id, reason="refresh token revoked by the client", event="sign_out")

    async def _issue(self, grant: GrantRecord, scopes: tuple[str, ...]) -> IssuedTokens:
        now = self.clock()
        access, refresh = "cpat_" + secrets.token_urlsafe(32), "cprt_" + secrets.token_urlsafe(32)
        access_record = TokenRecord(grant_id=grant.grant_id, workspace=grant.workspace, client_id=grant.client_id,
                                    subject=grant.subject, email=grant.email, groups=grant.groups, scopes=scopes,
                                    expires_at=now + self.access_lifetime)
        # The refresh token carries the whole sign-in's scope (narrowed only by narrowing the sign-in itself).
        refresh_record = dataclasses.replace(access_record, scopes=grant.scopes, expires_at=now + self.refresh_lifetime)
        await self._store.put(NS_ACCESS, hash_token(access), access_record.encode(), ttl=self.access_lifetime)
        await self._store.put(NS_REFRESH, hash_token(refresh), refresh_record.encode(), ttl=self.refresh_lifetime)
        return IssuedTokens(access, refresh, int(self.access_lifetime), scopes)


def _check_owner(record: TokenRecord, client_id: str | None) -> None:
    if client_id is not None and client_id != record.client_id:
        raise OAuthError("invalid_client", "the token was issued to another client", status=401)
