"""What is specific to one backend: the SQLite file, Redis locks across processes, open_store."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr
from support.redis import REDIS_URL, drop_prefix, require_redis

from castproxy.config.model import StoreSettings
from castproxy.store import StoreError, open_store
from castproxy.store.redis import RedisStore
from castproxy.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]


async def test_sqlite_creates_folder_and_wal_file(tmp_path):
    path = tmp_path / "deep" / "er" / "state.db"
    store = SQLiteStore(path)
    await store.put("ns", "k", b"v")
    await store.close()
    assert path.exists()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_sqlite_keeps_values_across_reopen(tmp_path, clock):
    path = tmp_path / "state.db"
    first = SQLiteStore(path, clock=clock)
    await first.put("ns", "grant", b"kept")
    await first.put("ns", "gone", b"x", ttl=0.1)
    await first.close()
    clock.advance(0.2)
    second = SQLiteStore(path, clock=clock)
    assert await second.get("ns", "grant") == b"kept"
    assert await second.get("ns", "gone") is None
    await second.close()


async def test_sqlite_sweeps_expired_rows(tmp_path, clock):
    path = tmp_path / "state.db"
    store = SQLiteStore(path, clock=clock)
    await store.put("ns", "old", b"x", ttl=0.05)
    clock.advance(0.1)
    store._next_sweep = 0.0  # the next write sweeps (normally at most once a minute)
    await store.put("ns", "new", b"y")
    await store.close()
    with sqlite3.connect(path) as db:
        assert [row[0] for row in db.execute("SELECT key FROM entries")] == ["new"]


async def test_sqlite_unusable_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open the SQLite store"):
        SQLiteStore(blocker / "state.db")


async def test_open_store_sqlite_resolves_against_config_folder(tmp_path):
    store = open_store(StoreSettings(backend="sqlite", path="./data/state.db"), tmp_path)
    try:
        assert isinstance(store, SQLiteStore)
        assert store.path == tmp_path / "data" / "state.db"
        assert await store.ping()
    finally:
        await store.close()


async def test_open_store_redis(redis_prefix):
    require_redis()
    store = open_store(StoreSettings(backend="redis", url=SecretStr(REDIS_URL)), Path("/nonexistent"))
    try:
        assert isinstance(store, RedisStore)
        assert await store.ping()
    finally:
        await store.close()


def test_open_store_redis_without_url():
    with pytest.raises(StoreError, match=r"store\.url"):
        open_store(StoreSettings(backend="redis"), Path("."))


async def test_redis_unreachable_ping_is_false():
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    store = RedisStore("redis://127.0.0.1:1/0")
    try:
        assert await store.ping() is False
        with pytest.raises(StoreError):
            await store.get("ns", "k")
    finally:
        await store.close()


_HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from castproxy.store.redis import RedisStore

    async def main(url, prefix):
        store = RedisStore(url, prefix=prefix)
        async with store.lock("shared", timeout=10):
            await store.put("ns", "holder", b"child")
            await asyncio.sleep(0.5)
            await store.put("ns", "done", b"1")
        await store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_redis_lock_serialises_two_processes(redis_prefix):
    require_redis()
    store = RedisStore(REDIS_URL, prefix=redis_prefix)
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, REDIS_URL, redis_prefix], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    try:
        for _ in range(200):  # wait until the other process holds the lock
            if await store.get("ns", "holder") == b"child":
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the child process never took the lock")
        async with store.lock("shared", timeout=10):
            # We only get in after the other process finished its critical section.
            assert await store.get("ns", "done") == b"1"
        assert await asyncio.to_thread(child.wait, 10) == 0
    finally:
        child.kill()
        await store.close()
        await drop_prefix(redis_prefix)
