"""Issue 11, finding 1: the scopes a client is granted are what it asked for within what the workspace offers,
and the upstream sign-in asks the upstream for those scopes only (not every scope in the config).

The upstream here is support.auth_server's FakeUpstream (it records what castproxy asked for) or the
real UpstreamOAuth building its authorization URL; tests/e2e/test_oauth_scopes.py runs the same rule
against the bundled test server and a Django upstream.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from support.auth_server import Harness, pkce, query_of

from castproxy.auth.upstream_oauth import UpstreamOAuth
from castproxy.config.model import OAuth2Auth
from castproxy.store.crypto import Cipher
from castproxy.store.sqlite import SQLiteStore


async def _grant_for(harness: Harness, scope: str | None) -> dict:
    """Sign in to workspace alpha (read:items write:items) asking for `scope`; the token endpoint's answer."""
    client_id = await harness.register()
    verifier, challenge = pkce()
    params = harness.authorize_params(client_id, challenge, scope=scope)
    page = await harness.http.get("/authorize", params=params)
    upstream = await harness.approve(page)
    back = await harness.upstream_callback(upstream)
    code = query_of(back.headers["location"])["code"]
    response = await harness.exchange(client_id, code, verifier)
    assert response.status_code == 200, response.text
    return response.json()


async def test_upstream_sign_in_asks_only_for_the_scopes_the_client_asked_for(as_harness: Harness) -> None:
    answer = await _grant_for(as_harness, "read:items")
    assert answer["scope"] == "read:items"
    assert as_harness.upstreams["alpha"].requested_scopes == [("read:items",)]


@pytest.mark.parametrize(
    ("requested", "granted"),
    [
        (None, ("read:items", "write:items")),  # no scope: everything the workspace offers
        ("", ("read:items", "write:items")),
        ("offline_access", ("read:items", "write:items")),  # asks for refresh tokens only: castproxy always gives them
        ("read:items admin", ("read:items",)),  # intersection: what the workspace does not offer is left out
        ("write:items read:items write:items", ("write:items", "read:items")),
    ],
)
async def test_granted_scopes_are_the_request_within_the_workspace(
    as_harness: Harness, requested: str | None, granted: tuple[str, ...]
) -> None:
    answer = await _grant_for(as_harness, requested)
    assert tuple(answer["scope"].split()) == granted
    assert as_harness.upstreams["alpha"].requested_scopes == [granted]


async def test_a_request_for_nothing_the_workspace_offers_is_refused(as_harness: Harness) -> None:
    client_id = await as_harness.register()
    response = await as_harness.http.get(
        "/authorize", params=as_harness.authorize_params(client_id, pkce()[1], scope="admin delete:all")
    )
    assert response.status_code == 303
    answer = query_of(response.headers["location"])
    assert answer["error"] == "invalid_scope"
    assert answer["error_description"] == (
        "none of the requested scopes is offered by workspace alpha (it offers: read:items write:items)"
    )
    assert as_harness.upstreams["alpha"].requested_scopes == []


async def test_a_narrowing_refresh_narrows_the_upstream_grant_and_the_sign_in(as_harness: Harness) -> None:
    signed = await as_harness.sign_in()
    narrowed = await as_harness.refresh(signed.client_id, signed.refresh_token, scope="read:items")
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["scope"] == "read:items"
    assert as_harness.upstreams["alpha"].narrowed == [(signed.grant_id, ("read:items",))]
    # The narrowed refresh token cannot widen again: the sign-in itself is read-only now.
    again = await as_harness.refresh(signed.client_id, narrowed.json()["refresh_token"])
    assert again.json()["scope"] == "read:items"
    wider = await as_harness.refresh(signed.client_id, again.json()["refresh_token"], scope="read:items write:items")
    assert wider.json() == {
        "error": "invalid_scope",
        "error_description": "scope beyond the original grant: write:items",
    }


async def test_a_refresh_the_upstream_cannot_narrow_is_refused_and_keeps_the_refresh_token(
    as_harness: Harness,
) -> None:
    from castproxy.auth.upstream_oauth import UpstreamAuthError

    signed = await as_harness.sign_in()
    as_harness.upstreams["alpha"].fail_narrow = UpstreamAuthError("the upstream gave no narrower token")
    refused = await as_harness.refresh(signed.client_id, signed.refresh_token, scope="read:items")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"
    as_harness.upstreams["alpha"].fail_narrow = None
    kept = await as_harness.refresh(signed.client_id, signed.refresh_token)
    assert kept.status_code == 200, kept.text
    assert kept.json()["scope"] == "read:items write:items"


def _upstream(store: SQLiteStore, scopes: list[str]) -> UpstreamOAuth:
    auth = OAuth2Auth(
        type="oauth2",
        authorization_url="https://upstream.test/authorize",
        token_url="https://upstream.test/token",
        client_id="castproxy",
        scopes=scopes,
    )
    return UpstreamOAuth(
        "ws", auth, store=store, cipher=Cipher.from_secret("k" * 32), callback_url="http://proxy.test/oauth/callback"
    )


@pytest.mark.parametrize(
    ("configured", "granted", "sent"),
    [
        (["read", "write"], ("read",), "read"),
        (["read", "write"], None, "read write"),  # no narrowing given: the configured scopes
        (["offline_access", "read", "write"], ("read",), "read offline_access"),  # refresh tokens stay castproxy's
    ],
)
async def test_upstream_authorization_url_carries_only_the_granted_scopes(
    tmp_path: Path, configured: list[str], granted: tuple[str, ...] | None, sent: str
) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    upstream = _upstream(store, configured)
    try:
        pending = await upstream.start_sign_in({}, scopes=granted)
        assert parse_qs(urlsplit(pending.url).query)["scope"] == [sent]
    finally:
        await upstream.aclose()
        await store.close()
