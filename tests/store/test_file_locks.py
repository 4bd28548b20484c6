"""SQLite's store lock holds across processes (serve --workers N): flock(2) files beside the database.

Two stores on one file stand for two workers; a real second process holds a lock and is killed with
SIGKILL to show the kernel frees it; names colliding on one slot nest without waiting on themselves.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from castproxy.store.base import LockTimeout
from castproxy.store.filelock import FileLocks
from castproxy.store.sqlite import SQLiteStore


async def test_two_stores_on_one_file_exclude_each_other(tmp_path: Path) -> None:
    first, second = SQLiteStore(tmp_path / "state.db"), SQLiteStore(tmp_path / "state.db")
    try:
        order: list[str] = []
        async with first.lock("upstream-refresh:w:g1", timeout=5):
            with pytest.raises(LockTimeout):
                async with second.lock("upstream-refresh:w:g1", timeout=0.2):
                    pass

            async def waiter() -> None:
                async with second.lock("upstream-refresh:w:g1", timeout=5):
                    order.append("second")

            task = asyncio.create_task(waiter())
            await asyncio.sleep(0)  # the waiter starts polling while the first still holds the lock
            order.append("first")
        await task
        assert order == ["first", "second"]
        assert (tmp_path / "state.db.locks").is_dir()
    finally:
        await first.close()
        await second.close()


HOLDER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from castproxy.store.filelock import FileLocks

    async def main():
        async with FileLocks(Path(sys.argv[1])).hold("upstream-refresh:w:g1", timeout=5):
            print("held", flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
""")


async def test_a_killed_holder_releases_the_lock(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "state.db.locks")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeout):
            async with store.lock("upstream-refresh:w:g1", timeout=0.2):
                pass
        os.kill(holder.pid, signal.SIGKILL)  # dies holding it, no cleanup code runs
        holder.wait(10)
        async with store.lock("upstream-refresh:w:g1", timeout=5):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        await store.close()


async def test_names_sharing_a_slot_nest_in_one_process(tmp_path: Path) -> None:
    locks = FileLocks(tmp_path, slots=1)  # every name on the same file
    other = FileLocks(tmp_path, slots=1)  # another process, as far as flock is concerned
    async with locks.hold("upstream-refresh:w:g1", timeout=1), locks.hold("upstream-register:w", timeout=1):
        with pytest.raises(LockTimeout):
            async with other.hold("upstream-register:w", timeout=0.1):
                pass
    async with other.hold("upstream-register:w", timeout=1):
        pass
