"""The store interface every backend implements and the shared conformance tests exercise.

A namespaced key/value store with expiry, atomic single-use reads and a per-name lock, which is all
the OAuth layer needs (pending sign-ins, codes, tokens, grants, client registrations). Values are
opaque bytes: callers encrypt secrets before `put` (see castproxy.store.crypto).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Store(Protocol):
    async def put(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        """Create or replace; with `ttl` (seconds) the entry disappears after that long."""
        ...

    async def put_if_absent(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Create only when no live entry exists; True when created."""
        ...

    async def get(self, namespace: str, key: str) -> bytes | None: ...

    async def take(self, namespace: str, key: str) -> bytes | None:
        """Atomically read and delete (single-use values such as codes and state); None if absent."""
        ...

    async def delete(self, namespace: str, key: str) -> bool: ...

    def lock(self, name: str, timeout: float = 30.0) -> AbstractAsyncContextManager[None]:
        """Mutual exclusion across every process sharing this store (Redis) or this process (SQLite)."""
        ...

    async def ping(self) -> bool:
        """True when the backend answers (used by /readyz)."""
        ...

    async def close(self) -> None: ...
