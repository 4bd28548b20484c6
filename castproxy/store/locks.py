"""Process-local asyncio locks keyed by name, created on first use and dropped when nobody holds or waits.

Used by the SQLite store (its `lock`) and by the OAuth client to let one coroutine per process do a
refresh while the others wait, before any cross-process lock is touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from castproxy.store.base import LockTimeout

__all__ = ["KeyedLocks"]


class KeyedLocks:
    def __init__(self) -> None:
        # name -> (lock, number of coroutines holding or waiting for it)
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, name: str, timeout: float | None = None) -> AsyncIterator[None]:
        lock, users = self._locks.get(name) or (asyncio.Lock(), 0)
        self._locks[name] = (lock, users + 1)
        try:
            try:
                await asyncio.wait_for(lock.acquire(), timeout)
            except TimeoutError:
                raise LockTimeout(f"lock {name!r} not acquired within {timeout:g} s") from None
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._locks[name]
            if users == 1:
                del self._locks[name]
            else:
                self._locks[name] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)
