"""Fixtures for the authorization server tests: a real SQLite store, stand-in upstreams, an in-process app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from auth_support import PUBLIC_URL, WORKSPACES, FakeUpstream, Harness
from support.redis import drop_prefix, require_redis

from castproxy.auth.bridge import AuthBridge
from castproxy.config.model import OAuth2Auth
from castproxy.store.crypto import Cipher
from castproxy.store.sqlite import SQLiteStore


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[SQLiteStore]:
    backend = SQLiteStore(tmp_path / "state.db")
    yield backend
    await backend.close()


@pytest.fixture
async def harness(store: SQLiteStore) -> AsyncIterator[Harness]:
    upstreams: dict[str, FakeUpstream] = {}

    def factory(name: str, auth: OAuth2Auth, callback_url: str) -> FakeUpstream:
        upstreams[name] = FakeUpstream(name, auth, callback_url)
        return upstreams[name]

    bridge = AuthBridge(
        store=store, cipher=Cipher.from_secret("s" * 32), public_url=PUBLIC_URL, upstream_factory=factory
    )
    bridge.update(WORKSPACES)
    harness = Harness(bridge, upstreams)
    yield harness
    await harness.http.aclose()
    await bridge.close()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own on the Redis at 127.0.0.1:6379 (skips, or fails under CI=true, without one)."""
    require_redis()
    prefix = f"castproxy-test:{uuid.uuid4().hex}:"
    yield prefix
    await drop_prefix(prefix)
