"""Registrations that are never used expire within a day, so a flood of /register calls cannot fill the
store for 90 days; a client that signs in keeps its registration for the full period."""

from __future__ import annotations

from support.auth_server import Harness, pkce
from support.clock import FakeClock


async def test_unused_registration_expires_within_a_day_used_one_stays(
    as_harness: Harness, store_clock: FakeClock
) -> None:
    unused = await as_harness.register()
    used = await as_harness.register()
    page = await as_harness.http.get("/authorize", params=as_harness.authorize_params(used, pkce()[1]))
    assert page.status_code == 200

    store_clock.advance(2 * 86400)
    gone = await as_harness.http.get("/authorize", params=as_harness.authorize_params(unused, pkce()[1]))
    assert gone.status_code == 400 and "must register again" in gone.text
    kept = await as_harness.http.get("/authorize", params=as_harness.authorize_params(used, pkce()[1]))
    assert kept.status_code == 200
