"""Fixtures for the security regression tests: the authorization-server harness of tests/auth, reused."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "auth"))

from auth_support import PUBLIC_URL, WORKSPACES, FakeUpstream, Harness

from castproxy.auth.bridge import AuthBridge
from castproxy.config.model import OAuth2Auth
from castproxy.store.crypto import Cipher
from castproxy.store.sqlite import SQLiteStore


@pytest.fixture
async def as_harness(tmp_path: Path) -> AsyncIterator[Harness]:
    store = SQLiteStore(tmp_path / "state.db")
    upstreams: dict[str, FakeUpstream] = {}

    def factory(name: str, auth: OAuth2Auth, callback_url: str) -> FakeUpstream:
        upstreams[name] = FakeUpstream(name, auth, callback_url)
        return upstreams[name]

    bridge = AuthBridge(
        store=store, cipher=Cipher.from_secret("s" * 32), public_url=PUBLIC_URL, upstream_factory=factory
    )
    bridge.update(WORKSPACES)
    harness = Harness(bridge, upstreams)
    yield harness
    await harness.http.aclose()
    await bridge.close()
    await store.close()
