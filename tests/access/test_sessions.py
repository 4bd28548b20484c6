"""Stored company sign-in sessions: today's on-disk JSON still reads, and a malformed record is no session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.clock import FakeClock

from castproxy.access.oidc import Identity
from castproxy.access.sessions import NS_PENDING, NS_SESSION, IdentitySessions, PendingIdentity
from castproxy.store.crypto import Cipher, hash_token, record_aad
from castproxy.store.sqlite import SQLiteStore

CIPHER = Cipher.from_secret("s" * 40)


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[IdentitySessions]:
    store = SQLiteStore(tmp_path / "state.db")
    yield IdentitySessions(store, CIPHER, lifetime=3600, clock=FakeClock(1000.0))
    await store.close()


async def _store(sessions: IdentitySessions, namespace: str, secret: str, plain: bytes) -> None:
    key = hash_token(secret)
    await sessions._store.put(namespace, key, CIPHER.encrypt(plain, aad=record_aad(namespace, key)))


async def test_a_session_and_a_pending_sign_in_round_trip(sessions: IdentitySessions) -> None:
    person = Identity("sub-1", "ada@example.com", ("ops",), "Ada")
    assert await sessions.get(await sessions.start(person)) == person
    pending = PendingIdentity("verifier", "nonce", "client_id=c", "browser-hash")
    await sessions.park("state-1", pending)
    assert await sessions.take("state-1") == pending


async def test_records_in_the_old_format_read(sessions: IdentitySessions) -> None:
    # Exactly as the code before pydantic wrote them: json.dumps of the fields.
    old_session = {"subject": "sub-1", "email": "ada@example.com", "groups": ["ops"], "name": None,
                   "expires_at": 2000.0}
    await _store(sessions, NS_SESSION, "cookie-1", json.dumps(old_session).encode())
    assert await sessions.get("cookie-1") == Identity("sub-1", "ada@example.com", ("ops",))
    old_pending = {"verifier": "v", "nonce": "n", "return_to": "q", "browser": "b"}
    await _store(sessions, NS_PENDING, "state-1", json.dumps(old_pending).encode())
    assert await sessions.take("state-1") == PendingIdentity("v", "n", "q", "b")


@pytest.mark.parametrize(
    "plain",
    [b"not json", b"[]", b'{"email":"a@b.c","expires_at":2000}', b'{"subject":"s","groups":7,"expires_at":2000}'],
)
async def test_a_malformed_session_is_no_session(sessions: IdentitySessions, plain: bytes) -> None:
    await _store(sessions, NS_SESSION, "cookie-1", plain)
    assert await sessions.get("cookie-1") is None  # the person signs in again


async def test_a_malformed_pending_sign_in_is_none(sessions: IdentitySessions) -> None:
    await _store(sessions, NS_PENDING, "state-1", b'{"verifier":"v"}')
    assert await sessions.take("state-1") is None
