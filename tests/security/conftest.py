"""Fixtures for the security regression tests: the authorization-server harness of tests/auth (support.auth_server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.auth_server import Harness, harness_for
from support.clock import FakeClock

from castproxy.store.sqlite import SQLiteStore


@pytest.fixture
def store_clock() -> FakeClock:
    """The store's clock (its expiry), moved by hand."""
    return FakeClock()


@pytest.fixture
async def as_harness(tmp_path: Path, store_clock: FakeClock) -> AsyncIterator[Harness]:
    store = SQLiteStore(tmp_path / "state.db", clock=store_clock)
    harness = harness_for(store)
    yield harness
    await harness.aclose()
    await store.close()
