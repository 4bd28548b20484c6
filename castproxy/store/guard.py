"""A time bound on every store operation, and one clear retryable error while the store is down or slow.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TypeVar

from castproxy.store.base import LockTimeout, Store, StoreError

__all__ = ["RETRY_AFTER", "STORE_TIMEOUT", "GuardedStore", "StoreUnavailable"]

T = TypeVar("T")
log = logging.getLogger(__name__)

STORE_TIMEOUT = 2.0  # seconds one store operation may take before callers are told the store is unavailable
RETRY_AFTER = 5.0  # seconds the store counts as down after a failure (the Retry-After callers get)


class StoreUnavailable(StoreError):
    """The store did not answer within the bound, or failed; `retry_after` is whole seconds (>= 1)."""

    def __init__(self, backend: str, retry_after: int) -> None:
        super().__init__(f"castproxy's {backend} store is unavailable; try again in {retry_after} s")
        self.backend = backend
        self.retry_after = retry_after


class GuardedStore:
    def __init__(
        self,
        inner: Store,
        backend: str,
        *,
        timeout: float = STORE_TIMEOUT,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.backend = backend
        self.timeout = timeout
        self.retry_after = retry_after
        self._clock = clock
        self._down_until = 0.0
        self._down_since: float | None = None

    # ---- the state ------------------------------------------------------------------------------

    def _cooling_off(self) -> bool:
        """Within retry_after of the last failure; a clock set back (a wall clock can be) never stretches it."""
        return 0 < self._down_until - self._clock() <= self.retry_after

    def _unavailable(self) -> StoreUnavailable:
        remaining = max(1, math.ceil(self._down_until - self._clock()))
        return StoreUnavailable(self.backend, remaining)

    def _failed(self, error: BaseException) -> StoreUnavailable:
        now = self._clock()
        if self._down_since is None:
            self._down_since = now
            kind = "timeout" if isinstance(error, TimeoutError) else type(error).__name__
            log.error("store unavailable", extra={"fields": {
                "backend": self.backend, "error_type": kind, "bound_s": self.timeout, "retry_after_s": self.retry_after,
            }})
        self._down_until = now + self.retry_after
        return self._unavailable()

    def _answered(self) -> None:
        if self._down_since is not None:
            seconds = round(self._clock() - self._down_since, 1)
            self._down_since = None
            self._down_until = 0.0
            log.warning("store answers again", extra={"fields": {"backend": self.backend, "down_s": seconds}})

    async def _bounded(self, operation: Callable[[], Awaitable[T]]) -> T:
        if self._cooling_off():
            raise self._unavailable()
        try:
            async with asyncio.timeout(self.timeout):
                result = await operation()
        except (StoreError, TimeoutError, OSError) as error:
            raise self._failed(error) from error
        if self._down_since is not None:
            self._answered()
        return result

    # ---- the Store protocol ---------------------------------------------------------------------

    async def put(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        await self._bounded(lambda: self.inner.put(namespace, key, value, ttl))

    async def put_if_absent(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> bool:
        return await self._bounded(lambda: self.inner.put_if_absent(namespace, key, value, ttl))

    async def get(self, namespace: str, key: str) -> bytes | None:
        return await self._bounded(lambda: self.inner.get(namespace, key))

    async def take(self, namespace: str, key: str) -> bytes | None:
        return await self._bounded(lambda: self.inner.take(namespace, key))

    async def delete(self, namespace: str, key: str) -> bool:
        return await self._bounded(lambda: self.inner.delete(namespace, key))

    async def items(self, namespace: str, *, limit: int = 10_000) -> list[tuple[str, bytes]]:
        return await self._bounded(lambda: self.inner.items(namespace, limit=limit))

    def lock(self, name: str, timeout: float = 30.0) -> AbstractAsyncContextManager[None]:
        return self._hold(name, timeout)

    @asynccontextmanager
    async def _hold(self, name: str, timeout: float) -> AsyncIterator[None]:
        if self._cooling_off():
            raise self._unavailable()
        async with AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(self.inner.lock(name, timeout))
            except LockTimeout:
                raise
            except (StoreError, OSError) as error:
                raise self._failed(error) from error
            yield

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self.timeout):
                answered = bool(await self.inner.ping())
        except (StoreError, TimeoutError, OSError) as error:
            self._failed(error)
            return False
        if answered:
            self._answered()
        return answered

    async def close(self) -> None:
        await self.inner.close()
