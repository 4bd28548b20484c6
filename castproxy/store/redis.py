"""The shared store for several castproxy replicas: Redis via redis.asyncio.

Keys are `{prefix}{namespace}:{key}`; expiry is Redis' own (PX), `take` is GETDEL, `put_if_absent`
is SET NX, and `lock` is a redis-py Lock (random token, lease = timeout, blocking acquire), so the
holders of one name are serialised across every process sharing the Redis database.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import redis.asyncio as aioredis
from redis.exceptions import LockError, RedisError

from castproxy.store.base import LockTimeout, StoreError

__all__ = ["RedisStore"]

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "castproxy:"


def _millis(ttl: float) -> int:
    # PX must be a positive integer; a zero or negative ttl means "gone almost at once".
    return max(1, int(ttl * 1000))


def _bytes(value: bytes | str | None) -> bytes | None:
    # The client is made without decode_responses, so values are bytes; redis-py's types say bytes or str.
    return value.encode() if isinstance(value, str) else value


class RedisStore:
    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, max_connections: int = 32) -> None:
        self.prefix = prefix
        try:
            # A blocking pool: under a burst, callers wait for a free connection instead of failing
            # with "Too many connections" (what the default pool does past its limit).
            pool = aioredis.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=10.0, socket_timeout=10.0, socket_connect_timeout=5.0
            )
            self._client: aioredis.Redis | None = aioredis.Redis.from_pool(pool)  # owns the pool
        except ValueError as exc:
            # The URL may carry a password: name the problem, not the URL.
            raise StoreError(f"invalid Redis URL: {exc.__class__.__name__}") from None

    @property
    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise StoreError("the Redis store is closed")
        return self._client

    def _key(self, namespace: str, key: str) -> str:
        return f"{self.prefix}{namespace}:{key}"

    async def put(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        try:
            await self._redis.set(self._key(namespace, key), value, px=None if ttl is None else _millis(ttl))
        except RedisError as exc:
            raise StoreError(f"Redis store: {exc.__class__.__name__}") from exc

    async def put_if_absent(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> bool:
        try:
            created = await self._redis.set(
                self._key(namespace, key), value, nx=True, px=None if ttl is None else _millis(ttl)
            )
        except RedisError as exc:
            raise StoreError(f"Redis store: {exc.__class__.__name__}") from exc
        return bool(created)

    async def get(self, namespace: str, key: str) -> bytes | None:
        try:
            return _bytes(await self._redis.get(self._key(namespace, key)))
        except RedisError as exc:
            raise StoreError(f"Redis store: {exc.__class__.__name__}") from exc

    async def take(self, namespace: str, key: str) -> bytes | None:
        try:
            return _bytes(await self._redis.getdel(self._key(namespace, key)))
        except RedisError as exc:
            raise StoreError(f"Redis store: {exc.__class__.__name__}") from exc

    async def delete(self, namespace: str, key: str) -> bool:
        try:
            return bool(await self._redis.delete(self._key(namespace, key)))
        except RedisError as exc:
            raise StoreError(f"Redis store: {exc.__class__.__name__}") from exc

    async def items(self, namespace: str, *, limit: int = 10_000) -> list[tuple[str, bytes]]:
        """SCAN for the namespace's keys (glob characters in the prefix escaped), then MGET them in batches;
        a key that expired between the two is left out."""
        start = self._key(namespace, "")
        pattern = "".join(f"\\{char}" if char in "*?[]\\" else char for char in start) + "*"
        found: list[tuple[str, bytes]] = []
        try:
            keys: list[bytes] = []
            async for key in self._redis.scan_iter(match=pattern, count=1000):
                keys.append(key)
                if len(keys) >= limit:
                    break
            for first in range(0, len(keys), 500):
                batch = keys[first : first + 500]
                values = await self._redis.mget(batch)
                for key, value in zip(batch, values, strict=True):
                    if (blob := _bytes(value)) is not None:
                        text = key.decode() if isinstance(key, bytes) else str(key)
                        found.append((text[len(start):], blob))
        except RedisError as exc:
            raise StoreError(f"Redis store: {exc.__class__.__name__}") from exc
        return found

    def lock(self, name: str, timeout: float = 30.0) -> AbstractAsyncContextManager[None]:
        return self._hold(name, timeout)

    @asynccontextmanager
    async def _hold(self, name: str, timeout: float) -> AsyncIterator[None]:
        lock = self._redis.lock(
            self._key("lock", name),
            timeout=timeout,
            sleep=0.05,
            blocking=True,
            blocking_timeout=timeout,
            thread_local=False,
            raise_on_release_error=False,
        )
        try:
            acquired = await lock.acquire()
        except LockError:
            acquired = False
        except RedisError as exc:
            raise StoreError(f"Redis store: {exc.__class__.__name__}") from exc
        if not acquired:
            raise LockTimeout(f"lock {name!r} not acquired within {timeout:g} s")
        try:
            yield
        finally:
            try:
                await lock.release()
            except (LockError, RedisError) as exc:
                # The lease ran out (holder took longer than `timeout`) or Redis went away.
                log.warning("releasing store lock %r failed: %s", name, exc.__class__.__name__)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError, StoreError):
            return False

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
