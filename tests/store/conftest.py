"""Fixtures for the store conformance suite: every test runs against SQLite and Redis.

Redis tests skip with a reason when 127.0.0.1:6379 does not answer, and fail instead when CI=true.
Each test gets its own SQLite file and its own Redis key prefix, cleaned up afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from support.redis import REDIS_URL, drop_prefix, require_redis

from castproxy.store.redis import RedisStore
from castproxy.store.sqlite import SQLiteStore


@pytest.fixture
def redis_prefix() -> str:
    return f"castproxy-test:{uuid.uuid4().hex}:"


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path, redis_prefix: str) -> AsyncIterator[object]:
    if request.param == "sqlite":
        backend = SQLiteStore(tmp_path / "state" / "castproxy.db")
        yield backend
        await backend.close()
        return
    require_redis()
    backend = RedisStore(REDIS_URL, prefix=redis_prefix)
    yield backend
    await backend.close()
    await drop_prefix(redis_prefix)
