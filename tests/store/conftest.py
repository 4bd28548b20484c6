"""Fixtures for the store conformance suite: every test runs against SQLite and Redis.

Redis tests skip with a reason when 127.0.0.1:6379 does not answer, and fail instead when CI=true.
Each test gets its own SQLite file and its own Redis key prefix, cleaned up afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis
from support.clock import FakeClock
from support.redis import REDIS_URL, drop_prefix, require_redis

from castproxy.store.redis import RedisStore
from castproxy.store.sqlite import SQLiteStore


@pytest.fixture
def redis_prefix() -> str:
    return f"castproxy-test:{uuid.uuid4().hex}:"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def elapse(request: pytest.FixtureRequest, clock: FakeClock, redis_prefix: str) -> Callable[[float], Awaitable[None]]:
    """Let `seconds` pass for the store's expiry: SQLite's clock moves; Redis expires by its own clock, so there
    every key under the test's prefix has its remaining TTL cut by `seconds` (gone at <= 0), as waiting would."""

    async def elapse(seconds: float) -> None:
        if request.node.callspec.params["store"] == "sqlite":
            clock.advance(seconds)
            return
        client = aioredis.from_url(REDIS_URL)
        try:
            async for key in client.scan_iter(match=f"{redis_prefix}*"):
                remaining = await client.pttl(key)
                if remaining >= 0:  # -1: no expiry
                    left = remaining - int(seconds * 1000)
                    await (client.pexpire(key, left) if left > 0 else client.delete(key))
        finally:
            await client.aclose()

    return elapse


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path, redis_prefix: str, clock: FakeClock) -> AsyncIterator[object]:
    if request.param == "sqlite":
        backend = SQLiteStore(tmp_path / "state" / "castproxy.db", clock=clock)
        yield backend
        await backend.close()
        return
    require_redis()
    backend = RedisStore(REDIS_URL, prefix=redis_prefix)
    yield backend
    await backend.close()
    await drop_prefix(redis_prefix)
