"""A remembered approval covers the redirect URI it was given for, not every URI the client registered."""

from __future__ import annotations

from support.auth_server import Harness, pkce


async def test_remembered_consent_does_not_cover_another_redirect_uri(as_harness: Harness) -> None:
    first, second = "https://app.example/cb", "https://app.example/other-cb"
    client_id = await as_harness.register([first, second])
    page = await as_harness.http.get(
        "/authorize", params=as_harness.authorize_params(client_id, pkce()[1], redirect_uri=first)
    )
    assert (await as_harness.approve(page)).status_code == 303
    again = await as_harness.http.get(
        "/authorize", params=as_harness.authorize_params(client_id, pkce()[1], redirect_uri=first)
    )
    assert again.status_code == 303  # remembered for the same redirect URI
    other = await as_harness.http.get(
        "/authorize", params=as_harness.authorize_params(client_id, pkce()[1], redirect_uri=second)
    )
    assert other.status_code == 200, other.headers.get("location")
    assert "csrf_token" in other.text


async def test_remembered_consent_survives_a_new_loopback_port(as_harness: Harness) -> None:
    client_id = await as_harness.register(["http://127.0.0.1/callback"])
    page = await as_harness.http.get(
        "/authorize",
        params=as_harness.authorize_params(client_id, pkce()[1], redirect_uri="http://127.0.0.1:5001/callback"),
    )
    assert (await as_harness.approve(page)).status_code == 303
    again = await as_harness.http.get(
        "/authorize",
        params=as_harness.authorize_params(client_id, pkce()[1], redirect_uri="http://127.0.0.1:6002/callback"),
    )
    assert again.status_code == 303
