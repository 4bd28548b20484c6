"""The embedded store: one SQLite file in WAL mode, accessed from a single worker thread.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from castproxy.store.base import StoreError
from castproxy.store.filelock import FileLocks
from castproxy.store.locks import KeyedLocks

__all__ = ["SQLiteStore"]

T = TypeVar("T")

SWEEP_INTERVAL = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    expires_at REAL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_expiry ON entries (expires_at) WHERE expires_at IS NOT NULL;
"""


def _private_file(path: Path) -> None:
    """Create `path` readable by its owner only (0600), in folders created 0700; an existing file is made 0600.

    SQLite gives its -wal and -shm files the database file's mode, so they are private too. Folders that
    already exist are left as they are (they may be a mounted volume the operator set up).
    """
    missing = [parent for parent in [path.parent, *path.parent.parents] if not parent.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        os.chmod(path, 0o600)


class SQLiteStore:
    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock  # epoch seconds for expiry (the wall clock, so other processes agree)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="castproxy-sqlite")
        self._locks = KeyedLocks()
        self._next_sweep = 0.0
        self._closed = False
        try:
            _private_file(self.path)
            # Opened here (startup) so a bad path fails at once; used only from the worker thread after.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._file_locks = FileLocks(self.path.with_name(self.path.name + ".locks"))
        except (OSError, sqlite3.Error, StoreError) as exc:
            self._executor.shutdown(wait=False)
            raise StoreError(f"cannot open the SQLite store at {self.path}: {exc}") from exc

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreError("the SQLite store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, work, self._db)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: {exc}") from exc

    def _maybe_sweep(self, db: sqlite3.Connection, now: float) -> None:
        # Runs on the worker thread, so _next_sweep is only touched there.
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_INTERVAL
            db.execute("DELETE FROM entries WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,))

    async def put(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> None:
        expires_at = None if ttl is None else self._clock() + ttl

        def work(db: sqlite3.Connection) -> None:
            self._maybe_sweep(db, self._clock())
            db.execute(
                "INSERT INTO entries (namespace, key, value, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                (namespace, key, bytes(value), expires_at),
            )

        await self._run(work)

    async def put_if_absent(self, namespace: str, key: str, value: bytes, ttl: float | None = None) -> bool:
        expires_at = None if ttl is None else self._clock() + ttl

        def work(db: sqlite3.Connection) -> bool:
            now = self._clock()
            self._maybe_sweep(db, now)
            # Replaces only an expired row; a live one makes the upsert a no-op (rowcount 0).
            cursor = db.execute(
                "INSERT INTO entries (namespace, key, value, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at "
                "WHERE entries.expires_at IS NOT NULL AND entries.expires_at <= ?",
                (namespace, key, bytes(value), expires_at, now),
            )
            return cursor.rowcount == 1

        return await self._run(work)

    async def get(self, namespace: str, key: str) -> bytes | None:
        def work(db: sqlite3.Connection) -> bytes | None:
            row = db.execute(
                "SELECT value FROM entries WHERE namespace = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)",
                (namespace, key, self._clock()),
            ).fetchone()
            return None if row is None else bytes(row[0])

        return await self._run(work)

    async def take(self, namespace: str, key: str) -> bytes | None:
        def work(db: sqlite3.Connection) -> bytes | None:
            now = self._clock()
            row = db.execute(
                "DELETE FROM entries WHERE namespace = ? AND key = ? RETURNING value, expires_at", (namespace, key)
            ).fetchone()
            if row is None or (row[1] is not None and row[1] <= now):
                return None
            return bytes(row[0])

        return await self._run(work)

    async def delete(self, namespace: str, key: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            now = self._clock()
            row = db.execute(
                "DELETE FROM entries WHERE namespace = ? AND key = ? RETURNING expires_at", (namespace, key)
            ).fetchone()
            return row is not None and (row[0] is None or row[0] > now)

        return await self._run(work)

    async def items(self, namespace: str, *, limit: int = 10_000) -> list[tuple[str, bytes]]:
        def work(db: sqlite3.Connection) -> list[tuple[str, bytes]]:
            rows = db.execute(
                "SELECT key, value FROM entries WHERE namespace = ? AND (expires_at IS NULL OR expires_at > ?) "
                "LIMIT ?",
                (namespace, self._clock(), max(0, limit)),
            ).fetchall()
            return [(str(key), bytes(value)) for key, value in rows]

        return await self._run(work)

    @asynccontextmanager
    async def lock(self, name: str, timeout: float = 30.0) -> AsyncIterator[None]:
        """Across the processes sharing this file: this process's waiters queue on an asyncio lock (no
        polling among them), then one of them takes the file lock. `timeout` bounds the whole wait."""
        deadline = time.monotonic() + timeout
        async with self._locks.hold(name, timeout), self._file_locks.hold(name, max(0.0, deadline - time.monotonic())):
            yield

    async def ping(self) -> bool:
        try:
            await self._run(lambda db: db.execute("SELECT 1").fetchone())
        except StoreError:
            return False
        return True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._db.close)
        self._executor.shutdown(wait=True)
