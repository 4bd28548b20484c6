"""Redis helpers shared by the store tests (skip or fail when Redis is absent, drop a test's keys)."""

from __future__ import annotations

import os
import socket

import pytest

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def require_redis() -> None:
    if redis_available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("Redis is not answering on 127.0.0.1:6379 and CI=true: Redis tests must run in CI")
    pytest.skip("Redis is not answering on 127.0.0.1:6379 (start redis-server to run these tests)")


async def drop_prefix(prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
