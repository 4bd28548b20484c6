"""Redis for the tests: is 127.0.0.1:6379 answering (skip, or fail under CI=true, when not), and dropping keys."""

from __future__ import annotations

import socket

from support.skips import skip_or_fail

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def require_redis() -> None:
    if not redis_available():
        skip_or_fail(
            "Redis is not answering on 127.0.0.1:6379 (start redis-server to run these tests)",
            ci_reason="Redis is not answering on 127.0.0.1:6379 and CI=true: Redis tests must run in CI",
        )


async def drop_prefix(prefix: str) -> None:
    """Delete every key under `prefix` (each test uses its own)."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
