"""Issue 11, finding 4: unauthenticated `/authorize` requests cannot fill the store.

Before, 1,500 GETs with a 1,000-character `state` left 1,500 pending sign-ins (4.4 KB each, kept ten
minutes). Now `state` is capped, each caller address may start only so many sign-ins a minute, the whole
proxy only so many at once, and a pending record holds only what the sign-in needs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.auth_server import Harness, harness_for, pkce

from castproxy.auth.server.limits import SIGN_INS, RateLimit, SignInBudget
from castproxy.store.sqlite import SQLiteStore

REQUESTS = 1500
PENDING = ("as-pending", "as-sign-in", "upstream-signin")


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    store = SQLiteStore(tmp_path / "state.db")
    harness = harness_for(store)
    harness.db = tmp_path / "state.db"  # type: ignore[attr-defined]
    yield harness
    await harness.aclose()
    await store.close()


def pending(harness: Harness) -> tuple[int, int]:
    """(rows, bytes) of pending sign-ins in the store."""
    with sqlite3.connect(harness.db) as db:  # type: ignore[attr-defined]
        marks = ",".join("?" * len(PENDING))
        row = db.execute(
            f"SELECT count(*), coalesce(sum(length(value)), 0) FROM entries WHERE namespace IN ({marks})", PENDING
        ).fetchone()
    return int(row[0]), int(row[1])


async def test_a_long_state_is_refused_and_stores_nothing(harness: Harness) -> None:
    client_id = await harness.register()
    challenge = pkce()[1]
    for _ in range(REQUESTS):
        response = await harness.http.get(
            "/authorize", params=harness.authorize_params(client_id, challenge, state="s" * 1000)
        )
        assert response.status_code == 303
    assert "state+longer+than+512+characters" in response.headers["location"]
    assert pending(harness) == (0, 0)


async def test_one_caller_cannot_fill_the_store(harness: Harness) -> None:
    client_id = await harness.register()
    challenge = pkce()[1]
    statuses = []
    for _ in range(REQUESTS):
        response = await harness.http.get(
            "/authorize", params=harness.authorize_params(client_id, challenge, state="s" * 500)
        )
        statuses.append(response.status_code)
    rows, size = pending(harness)
    assert rows <= SIGN_INS.burst + 5  # the burst, plus what refilled while the loop ran
    assert size < 32 * 1024
    assert statuses.count(429) >= REQUESTS - rows
    assert "Retry-After" in response.headers or response.status_code == 200


async def test_many_callers_together_are_capped_too(harness: Harness) -> None:
    harness.bridge.server.sign_ins = SignInBudget(per_caller=RateLimit(per_minute=30, burst=20), max_live=100)
    client_id = await harness.register()
    challenge = pkce()[1]
    statuses = []
    for number in range(REQUESTS):
        caller = harness.caller(f"10.{number // 250}.{number % 250}.1")
        response = await caller.get("/authorize", params=harness.authorize_params(client_id, challenge))
        statuses.append(response.status_code)
        await caller.aclose()
    assert pending(harness)[0] == 100
    assert statuses.count(200) == 100 and statuses.count(503) == REQUESTS - 100


async def test_a_remembered_consent_does_not_bypass_the_limit(harness: Harness) -> None:
    client_id = await harness.register()
    page = await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    assert (await harness.approve(page)).status_code == 303
    for _ in range(REQUESTS // 5):  # each would go straight to the upstream sign-in (two records)
        await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))
    assert pending(harness)[0] <= 2 * (SIGN_INS.burst + 5)
