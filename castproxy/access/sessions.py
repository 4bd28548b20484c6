"""Browser sessions of the company sign-in, and the sign-ins waiting for the provider's callback.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from pydantic import TypeAdapter

from castproxy.access.oidc import Identity
from castproxy.store.base import Store
from castproxy.store.crypto import Cipher, hash_token, record_aad

__all__ = ["IdentitySessions", "PendingIdentity"]

NS_SESSION = "id-session"
NS_PENDING = "id-pending"
PENDING_TTL = 900.0  # time to sign in at the provider


@dataclass(frozen=True, slots=True)
class PendingIdentity:
    verifier: str
    nonce: str
    return_to: str  # the /authorize query string to resume
    browser: str  # hash of the binding cookie


@dataclass(frozen=True, slots=True)
class _Session(Identity):
    expires_at: float = 0.0


_SESSION = TypeAdapter(_Session)
_PENDING = TypeAdapter(PendingIdentity)


class IdentitySessions:
    def __init__(
        self, store: Store, cipher: Cipher, *, lifetime: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._cipher = cipher
        self.lifetime = lifetime
        self._clock = clock

    async def start(self, identity: Identity) -> str:
        """A new session for `identity`: the cookie value to set."""
        cookie = secrets.token_urlsafe(32)
        key = hash_token(cookie)
        payload = _SESSION.dump_json(_Session(**asdict(identity), expires_at=self._clock() + self.lifetime))
        blob = self._cipher.encrypt(payload, aad=record_aad(NS_SESSION, key))
        await self._store.put(NS_SESSION, key, blob, ttl=self.lifetime)
        return cookie

    async def get(self, cookie: str | None) -> Identity | None:
        """The person of a live session, or None (no cookie, unknown, expired, or unreadable)."""
        if not cookie or len(cookie) > 128:
            return None
        key = hash_token(cookie)
        session = self._cipher.open_record(_SESSION, await self._store.get(NS_SESSION, key), NS_SESSION, key)
        if session is None or session.expires_at <= self._clock():
            return None
        return Identity(subject=session.subject, email=session.email, groups=session.groups, name=session.name)

    async def end(self, cookie: str | None) -> None:
        if cookie and len(cookie) <= 128:
            await self._store.delete(NS_SESSION, hash_token(cookie))

    async def park(self, state: str, pending: PendingIdentity) -> None:
        blob = self._cipher.encrypt(_PENDING.dump_json(pending), aad=record_aad(NS_PENDING, hash_token(state)))
        await self._store.put(NS_PENDING, hash_token(state), blob, ttl=PENDING_TTL)

    async def take(self, state: str) -> PendingIdentity | None:
        key = hash_token(state)
        return self._cipher.open_record(_PENDING, await self._store.take(NS_PENDING, key), NS_PENDING, key)
