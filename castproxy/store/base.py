"""The store interface every backend implements and the shared conformance tests exercise.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeVar

from pydantic import TypeAdapter, ValidationError

from castproxy.errors import CastproxyError

__all__ = ["LockTimeout", "MalformedRecord", "Store", "StoreError", "decode_record"]

T = TypeVar("T")


class StoreError(CastproxyError):
    """The backend failed (unreachable, corrupt file); the message names the backend, never a value."""


class LockTimeout(StoreError, TimeoutError):
    """A lock could not be acquired within its timeout."""


class MalformedRecord(StoreError, ValueError):
    """A stored record that does not decode as its kind (another version wrote it, or it was altered).

    The message names the kind, never a value. Also a ValueError, as an undecodable record always was."""


def decode_record(adapter: TypeAdapter[T], data: bytes, kind: str) -> T:
    """A record from its stored JSON, type-checked; MalformedRecord when it is not one."""
    try:
        return adapter.validate_json(data)
    except ValidationError:
        pass  # raised below, so no traceback carries the pydantic error (it quotes the value)
    raise MalformedRecord(f"a stored {kind} record cannot be read")


class Store(Protocol):
    async def put(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        """Create or replace; with `ttl` (seconds) the entry disappears after that long."""
        ...

    async def put_if_absent(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Create only when no live entry exists; True when created."""
        ...

    async def get(self, namespace: str, key: str) -> bytes | None:
        """The live value, or None when absent or expired."""
        ...

    async def take(self, namespace: str, key: str) -> bytes | None:
        """Atomically read and delete (single-use values such as codes and state); None if absent."""
        ...

    async def delete(self, namespace: str, key: str) -> bool:
        """Remove the entry; True when a live entry existed."""
        ...

    async def items(self, namespace: str, *, limit: int = 10_000) -> list[tuple[str, bytes]]:
        """The live (key, value) pairs of one namespace, at most `limit`, in no particular order.

        For listings an operator asks for (sign-ins on the admin page, the active sign-ins gauge), not
        for the request path: Redis has to scan its keyspace for them."""
        ...

    def lock(self, name: str, timeout: float = 30.0) -> AbstractAsyncContextManager[None]:
        """Mutual exclusion across every process sharing this store (Redis; SQLite: the processes of one host).

        `timeout` bounds both the wait to acquire (then `LockTimeout`) and how long a holder keeps
        the lock if it dies without releasing it (Redis lease)."""
        ...

    async def ping(self) -> bool:
        """True when the backend answers (used by /readyz)."""
        ...

    async def close(self) -> None: ...
