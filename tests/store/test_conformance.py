"""The conformance suite every store backend must pass (run against SQLite and Redis)."""

from __future__ import annotations

import asyncio

import pytest

from castproxy.store.base import LockTimeout, StoreError


async def test_put_get_delete(store):
    assert await store.get("ns", "k") is None
    await store.put("ns", "k", b"one")
    assert await store.get("ns", "k") == b"one"
    await store.put("ns", "k", b"two")
    assert await store.get("ns", "k") == b"two"
    assert await store.delete("ns", "k") is True
    assert await store.get("ns", "k") is None
    assert await store.delete("ns", "k") is False


async def test_namespaces_are_separate(store):
    await store.put("a", "k", b"in a")
    await store.put("b", "k", b"in b")
    assert await store.get("a", "k") == b"in a"
    assert await store.get("b", "k") == b"in b"


async def test_binary_values_round_trip(store):
    value = bytes(range(256)) * 4
    await store.put("ns", "bin", value)
    assert await store.get("ns", "bin") == value


async def test_ttl_expiry(store, elapse):
    await store.put("ns", "short", b"v", ttl=1.0)
    await store.put("ns", "long", b"v", ttl=60)
    await store.put("ns", "forever", b"v")
    assert await store.get("ns", "short") == b"v"
    await elapse(1.1)
    assert await store.get("ns", "short") is None
    assert await store.take("ns", "short") is None
    assert await store.delete("ns", "short") is False
    assert await store.get("ns", "long") == b"v"
    assert await store.get("ns", "forever") == b"v"


async def test_put_replaces_ttl(store, elapse):
    await store.put("ns", "k", b"v", ttl=0.3)
    await store.put("ns", "k", b"w")
    await elapse(0.45)
    assert await store.get("ns", "k") == b"w"


async def test_take_is_single_use(store):
    await store.put("ns", "code", b"secret")
    assert await store.take("ns", "code") == b"secret"
    assert await store.take("ns", "code") is None
    assert await store.get("ns", "code") is None


async def test_take_under_concurrency_has_one_winner(store):
    await store.put("ns", "code", b"only-once")
    results = await asyncio.gather(*(store.take("ns", "code") for _ in range(20)))
    assert results.count(b"only-once") == 1
    assert results.count(None) == 19


async def test_put_if_absent(store):
    assert await store.put_if_absent("ns", "k", b"first") is True
    assert await store.put_if_absent("ns", "k", b"second") is False
    assert await store.get("ns", "k") == b"first"


async def test_put_if_absent_after_expiry(store, elapse):
    assert await store.put_if_absent("ns", "k", b"first", ttl=0.3) is True
    assert await store.put_if_absent("ns", "k", b"early", ttl=60) is False
    await elapse(0.45)
    assert await store.put_if_absent("ns", "k", b"second", ttl=60) is True
    assert await store.get("ns", "k") == b"second"


async def test_put_if_absent_under_concurrency_has_one_winner(store):
    results = await asyncio.gather(*(store.put_if_absent("ns", "k", str(i).encode()) for i in range(20)))
    assert results.count(True) == 1
    winner = results.index(True)
    assert await store.get("ns", "k") == str(winner).encode()


async def test_lock_mutual_exclusion(store):
    inside = 0
    most_inside = 0
    order: list[int] = []

    async def worker(n: int) -> None:
        nonlocal inside, most_inside
        async with store.lock("grant-1", timeout=10):
            inside += 1
            most_inside = max(most_inside, inside)
            # Yield to the loop (and to the backend) while holding the lock.
            await store.put("ns", "counter", str(n).encode())
            await asyncio.sleep(0.01)
            order.append(n)
            inside -= 1

    await asyncio.gather(*(worker(n) for n in range(10)))
    assert most_inside == 1
    assert sorted(order) == list(range(10))


async def test_locks_with_different_names_do_not_block_each_other(store):
    entered: list[str] = []

    async def take(name: str, timeout: float) -> None:
        async with store.lock(name, timeout=timeout):
            entered.append(name)

    async with store.lock("a", timeout=5):
        await take("b", 1)  # another name while "a" is held: no LockTimeout
        with pytest.raises(LockTimeout):
            await take("a", 0.1)  # the held name itself still waits
    assert entered == ["b"]


async def test_lock_times_out_while_held(store):
    async with store.lock("busy", timeout=10):
        with pytest.raises(LockTimeout):
            async with store.lock("busy", timeout=0.3):
                pass
    # Released after the holder left: acquirable again.
    async with store.lock("busy", timeout=1):
        pass


async def test_lock_is_released_when_the_body_raises(store):
    with pytest.raises(RuntimeError):
        async with store.lock("boom", timeout=5):
            raise RuntimeError("inside")
    async with store.lock("boom", timeout=1):
        pass


async def test_ping(store):
    assert await store.ping() is True


async def test_close(store):
    await store.put("ns", "k", b"v")
    await store.close()
    await store.close()  # idempotent (the fixture closes once more)
    assert await store.ping() is False
    with pytest.raises(StoreError, match="closed"):
        await store.get("ns", "k")


async def test_burst_larger_than_any_connection_pool(store):
    # Hundreds of tool calls may read grants at once: callers wait for the backend, none fails.
    await store.put("ns", "grant", b"v")
    results = await asyncio.gather(*(store.get("ns", "grant") for _ in range(300)))
    assert results == [b"v"] * 300


async def test_items_lists_one_namespace_live_entries(store, elapse):
    await store.put("grants", "a", b"one")
    await store.put("grants", "b:with:colons", b"two", ttl=60)
    await store.put("grants", "gone", b"x", ttl=1)
    await store.put("grants-other", "c", b"not this namespace")
    await store.put("grant", "d", b"nor this one")
    await elapse(1.5)
    assert await store.get("grants", "gone") is None
    assert sorted(await store.items("grants")) == [("a", b"one"), ("b:with:colons", b"two")]
    assert await store.items("empty") == []


async def test_items_honours_the_limit_and_glob_characters(store):
    for index in range(30):
        await store.put("ns*[x]", f"k{index}", b"v")
    await store.put("nsA[x]", "other", b"v")  # would match if '*' were a glob
    found = await store.items("ns*[x]", limit=10)
    assert len(found) == 10 and all(key.startswith("k") for key, _ in found)
    assert len(await store.items("ns*[x]")) == 30
