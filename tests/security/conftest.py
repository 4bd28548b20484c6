"""Fixtures for the security regression tests: the authorization-server harness of tests/auth (support.auth_server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.auth_server import Harness, harness_for

from castproxy.store.sqlite import SQLiteStore


@pytest.fixture
async def as_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    store = SQLiteStore(tmp_path / "state.db")
    harness = harness_for(store)
    yield harness
    await harness.aclose()
    await store.close()
