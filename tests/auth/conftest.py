"""Fixtures for the auth tests: a real SQLite store, the in-process authorization server, a Redis key prefix."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from support.auth_server import Harness, harness_for
from support.redis import drop_prefix, require_redis

from castproxy.store.sqlite import SQLiteStore


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[SQLiteStore]:
    backend = SQLiteStore(tmp_path / "state.db")
    yield backend
    await backend.close()


@pytest.fixture
async def harness(store: SQLiteStore) -> AsyncIterator[Harness]:
    harness = harness_for(store)
    yield harness
    await harness.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own on the Redis at 127.0.0.1:6379 (skips, or fails under CI=true, without one)."""
    require_redis()
    prefix = f"castproxy-test:{uuid.uuid4().hex}:"
    yield prefix
    await drop_prefix(prefix)
