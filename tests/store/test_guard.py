"""GuardedStore: every operation bounded, one retryable error while the store is down, recovery on its own.

The backend is a real SQLite store behind a switch that makes its operations hang (what a paused
Redis does) or fail; time is an injected clock, so the down period is stepped, not slept through.
(The same with a real paused Redis: tests/e2e/test_store_paused.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TypeVar

import pytest

from castproxy.store.base import StoreError
from castproxy.store.guard import GuardedStore, StoreUnavailable
from castproxy.store.sqlite import SQLiteStore

T = TypeVar("T")


class Switchable:
    """A real store whose operations can be made to hang or fail."""

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner = inner
        self.mode = "ok"  # ok | hang | fail
        self.calls = 0

    async def _do(self, operation: Callable[[], Awaitable[T]]) -> T:
        self.calls += 1
        if self.mode == "hang":
            await asyncio.Event().wait()
        if self.mode == "fail":
            raise StoreError("Redis store: ConnectionError")
        return await operation()

    async def put(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        await self._do(lambda: self.inner.put(namespace, key, value, ttl))

    async def put_if_absent(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> bool:
        return await self._do(lambda: self.inner.put_if_absent(namespace, key, value, ttl))

    async def get(self, namespace: str, key: str) -> bytes | None:
        return await self._do(lambda: self.inner.get(namespace, key))

    async def take(self, namespace: str, key: str) -> bytes | None:
        return await self._do(lambda: self.inner.take(namespace, key))

    async def delete(self, namespace: str, key: str) -> bool:
        return await self._do(lambda: self.inner.delete(namespace, key))

    def lock(self, name: str, timeout: float = 30.0) -> AbstractAsyncContextManager[None]:
        self.calls += 1
        return self.inner.lock(name, timeout)

    async def ping(self) -> bool:
        return await self._do(self.inner.ping)

    async def close(self) -> None:
        await self.inner.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[tuple[GuardedStore, Switchable, Clock]]:
    backend = Switchable(SQLiteStore(tmp_path / "state.db"))
    clock = Clock()
    guarded = GuardedStore(backend, "redis", timeout=0.2, retry_after=5.0, clock=clock)
    yield guarded, backend, clock
    await guarded.close()


async def test_a_hanging_store_is_cut_at_the_bound_and_then_fails_at_once(parts) -> None:
    guarded, backend, clock = parts
    await guarded.put("ns", "k", b"v")
    backend.mode = "hang"
    with pytest.raises(StoreUnavailable) as first:
        await guarded.get("ns", "k")
    assert str(first.value) == "castproxy's redis store is unavailable; try again in 5 s"
    assert first.value.retry_after == 5

    calls = backend.calls
    clock.now += 3.2
    with pytest.raises(StoreUnavailable) as second:
        await guarded.get("ns", "k")  # known down: not tried again
    assert second.value.retry_after == 2 and backend.calls == calls
    with pytest.raises(StoreUnavailable):
        async with guarded.lock("refresh"):
            pass
    assert backend.calls == calls

    backend.mode = "ok"
    clock.now += 2
    assert await guarded.get("ns", "k") == b"v"  # the down period ended: tried, and it answers


async def test_a_clock_set_back_does_not_stretch_the_down_period(parts) -> None:
    """castproxy hands the guard its wall clock: an NTP step back of an hour must not mean an hour of 503s."""
    guarded, backend, clock = parts
    backend.mode = "fail"
    with pytest.raises(StoreUnavailable):
        await guarded.get("ns", "k")
    backend.mode = "ok"
    clock.now -= 3600
    assert await guarded.get("ns", "k") is None  # tried at once, and it answers


async def test_a_failing_store_reads_as_unavailable_and_ping_ends_the_down_period(parts) -> None:
    guarded, backend, _ = parts
    backend.mode = "fail"
    with pytest.raises(StoreUnavailable) as failed:
        await guarded.put("ns", "k", b"v")
    assert isinstance(failed.value, StoreError)  # callers that handle StoreError keep working
    assert await guarded.ping() is False
    backend.mode = "ok"
    assert await guarded.ping() is True  # the readiness probe always really tries
    await guarded.put("ns", "k", b"v")  # at once, though the 5 s have not passed
    assert await guarded.take("ns", "k") == b"v"


async def test_a_lock_held_elsewhere_still_times_out_as_a_lock(parts) -> None:
    guarded, _, _ = parts
    async with guarded.lock("one", timeout=0.1):
        with pytest.raises(TimeoutError):
            async with guarded.lock("one", timeout=0.1):
                pass
    async with guarded.lock("one", timeout=0.1):  # the store did not count as down for that
        pass
