"""The store key check (issue 11, finding 8): a canary record says whether server.secret_key reads the store."""

from __future__ import annotations

from pathlib import Path

from castproxy.store.crypto import Cipher
from castproxy.store.keycheck import KEY_PROBLEM, NS_KEY_CHECK, key_problem
from castproxy.store.sqlite import SQLiteStore

OLD, NEW, WRONG = "o" * 40, "n" * 40, "w" * 40


async def test_new_store_then_same_key_then_wrong_key(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    try:
        assert await key_problem(store, Cipher.from_secret(OLD)) is None  # writes the canary
        assert await key_problem(store, Cipher.from_secret(OLD)) is None
        assert await key_problem(store, Cipher.from_secret(WRONG)) == KEY_PROBLEM
        assert await store.get(NS_KEY_CHECK, "canary") is not None  # the wrong key changed nothing
        assert await key_problem(store, Cipher.from_secret(OLD)) is None
    finally:
        await store.close()


async def test_a_rotation_moves_the_canary_to_the_new_key(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    try:
        assert await key_problem(store, Cipher.from_secret(OLD)) is None
        assert await key_problem(store, Cipher.from_secret(NEW, previous=[OLD])) is None
        assert Cipher.from_secret(NEW).is_current(await store.get(NS_KEY_CHECK, "canary") or b"")
        assert await key_problem(store, Cipher.from_secret(NEW)) is None
        assert await key_problem(store, Cipher.from_secret(OLD)) == KEY_PROBLEM  # a replica left on the old key
    finally:
        await store.close()
