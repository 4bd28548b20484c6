"""Registrations that are never used expire within a day, so a flood of /register calls cannot fill the
store for 90 days; a client that signs in keeps its registration for the full period."""

from __future__ import annotations

import time

import pytest
from support.auth_server import Harness, pkce

import castproxy.store.sqlite as sqlite_module


async def test_unused_registration_expires_within_a_day_used_one_stays(
    as_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    unused = await as_harness.register()
    used = await as_harness.register()
    page = await as_harness.http.get("/authorize", params=as_harness.authorize_params(used, pkce()[1]))
    assert page.status_code == 200

    later = time.time() + 2 * 86400
    monkeypatch.setattr(sqlite_module.time, "time", lambda: later)
    gone = await as_harness.http.get("/authorize", params=as_harness.authorize_params(unused, pkce()[1]))
    assert gone.status_code == 400 and "must register again" in gone.text
    kept = await as_harness.http.get("/authorize", params=as_harness.authorize_params(used, pkce()[1]))
    assert kept.status_code == 200
