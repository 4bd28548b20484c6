"""Named locks shared by every process that uses the same SQLite file (`serve --workers N`), with flock(2).

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from castproxy.store.base import LockTimeout, StoreError

__all__ = ["FileLocks"]

SLOTS = 256
_FIRST_PAUSE = 0.005
_LONGEST_PAUSE = 0.05


class _Slot:
    """One lock file as this process uses it: its descriptor while held, and how many names hold it."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.holders = 0
        self.taking = asyncio.Lock()  # one coroutine at a time takes the file lock for the others


class FileLocks:
    """`hold(name)` excludes other processes holding a name on the same slot. Inside one process, the
    caller serialises each name itself (SQLiteStore's KeyedLocks); different names sharing a slot then
    share its file lock, so nested locks on colliding names (refresh, then registration) never wait on
    themselves."""

    def __init__(self, folder: Path, slots: int = SLOTS) -> None:
        self.folder = folder
        self.slots = slots
        self._held: dict[int, _Slot] = {}
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(f"cannot create the lock folder {folder}: {exc.strerror or exc}") from exc

    def _slot(self, name: str) -> int:
        return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % self.slots

    @contextlib.asynccontextmanager
    async def hold(self, name: str, timeout: float | None = None) -> AsyncIterator[None]:
        """Exclusive across processes; LockTimeout after `timeout` seconds."""
        index = self._slot(name)
        slot = self._held.setdefault(index, _Slot())
        deadline = None if timeout is None else time.monotonic() + timeout
        slot.holders += 1
        try:
            try:
                await asyncio.wait_for(slot.taking.acquire(), timeout)
            except TimeoutError:
                raise LockTimeout(f"lock {name!r} not acquired within {timeout:g} s") from None
            try:
                if slot.fd is None:
                    slot.fd = await self._take(index, name, timeout, deadline)
            finally:
                slot.taking.release()
            yield
        finally:
            slot.holders -= 1
            if slot.holders == 0:
                if slot.fd is not None:
                    with contextlib.suppress(OSError):
                        fcntl.flock(slot.fd, fcntl.LOCK_UN)
                    os.close(slot.fd)
                del self._held[index]

    async def _take(self, index: int, name: str, timeout: float | None, deadline: float | None) -> int:
        path = self.folder / f"{index:03x}.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot open a lock file in {self.folder}: {exc.strerror or exc}") from exc
        pause = _FIRST_PAUSE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockTimeout(f"lock {name!r} not acquired within {timeout:g} s") from None
                await asyncio.sleep(pause)
                pause = min(pause * 2, _LONGEST_PAUSE)
            except BaseException:
                os.close(fd)
                raise
