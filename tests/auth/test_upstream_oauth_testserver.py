"""UpstreamOAuth against the bundled test server (castproxy.testserver), the upstream users run in the demo.

Complements test_upstream_oauth.py (whose fake upstream counts requests): here the upstream is the
real one castproxy ships, with its own checks (PKCE required, exact redirect URIs, rotating refresh
tokens whose reuse revokes the grant), and the tokens are used on its API. Both share one FakeClock:
"after expiry" is a clock step, not a sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import httpx2
import pytest
from pydantic import SecretStr
from support.clock import FakeClock

from castproxy.auth.credentials import SignInRequired
from castproxy.auth.upstream_oauth import UpstreamOAuth
from castproxy.config.model import OAuth2Auth
from castproxy.store.crypto import Cipher
from castproxy.testserver.app import create_app
from castproxy.testserver.runner import RunningServer, run_in_thread

CALLBACK = "http://castproxy.test/oauth/callback"
SECRET = "cs-canary-bundled-4471"


LIFETIME = 60


def _start(mode: str) -> tuple[RunningServer, object, FakeClock]:
    clock = FakeClock()
    app = create_app(mode, auto_approve=True, redirect_uris=[CALLBACK], token_lifetime=LIFETIME,
                     client_secret=SECRET, clock=clock)
    return run_in_thread(app), app, clock


@pytest.fixture
def bundled() -> Iterator[tuple[RunningServer, object, FakeClock]]:
    server, app, clock = _start("oauth")
    yield server, app, clock
    server.stop()


@pytest.fixture
def bundled_dcr() -> Iterator[tuple[RunningServer, object, FakeClock]]:
    server, app, clock = _start("oauth-dcr")
    yield server, app, clock
    server.stop()


async def browser(url: str) -> dict[str, str]:
    async with httpx2.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code in (302, 303), response.text
    assert response.headers["location"].startswith(CALLBACK + "?")
    return dict(parse_qsl(urlsplit(response.headers["location"]).query))


async def call_api(base: str, token: str) -> int:
    async with httpx2.AsyncClient() as client:
        response = await client.get(f"{base}/api/items", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def test_sign_in_refresh_and_revocation_against_the_bundled_server(bundled, store):
    server, app, clock = bundled
    auth = OAuth2Auth(
        type="oauth2",
        issuer=server.url,  # endpoints come from its RFC 8414 metadata; `iss` is checked against it
        client_id="test-client-id",
        client_secret=SecretStr(SECRET),
        scopes=["read:items"],
    )
    oauth = UpstreamOAuth("items", auth, store=store, cipher=Cipher.from_secret("b" * 40), callback_url=CALLBACK,
                          clock=clock)
    try:
        params = await browser((await oauth.start_sign_in({})).url)
        assert params["iss"] == server.url
        grant_id = (await oauth.complete_sign_in(params)).grant_id
        first = await oauth.access_token(grant_id)
        assert await call_api(server.url, first) == 200

        clock.advance(LIFETIME + 1)
        # A second refresh with the rotated-away token would revoke the whole grant at this server.
        tokens = await asyncio.gather(*(oauth.access_token(grant_id) for _ in range(20)))
        assert len(set(tokens)) == 1 and tokens[0] != first
        assert await call_api(server.url, tokens[0]) == 200

        app.state.oauth.revoke_all()
        clock.advance(LIFETIME + 1)
        with pytest.raises(SignInRequired):
            await oauth.access_token(grant_id)
    finally:
        await oauth.aclose()


async def test_dcr_against_the_bundled_server(bundled_dcr, store):
    server, app, clock = bundled_dcr
    auth = OAuth2Auth(type="oauth2", provider="dcr", issuer=server.url, scopes=["read:items"])
    oauth = UpstreamOAuth("items", auth, store=store, cipher=Cipher.from_secret("b" * 40), callback_url=CALLBACK,
                          clock=clock)
    try:
        grant_id = (await oauth.complete_sign_in(await browser((await oauth.start_sign_in({})).url))).grant_id
        assert await call_api(server.url, await oauth.access_token(grant_id)) == 200
    finally:
        await oauth.aclose()

    service = OAuth2Auth(
        type="oauth2", provider="dcr", grant="client_credentials", issuer=server.url, scopes=["read:items"]
    )
    oauth = UpstreamOAuth("svc", service, store=store, cipher=Cipher.from_secret("b" * 40), callback_url=CALLBACK,
                          clock=clock)
    try:
        first = await oauth.service_token()
        assert await call_api(server.url, first) == 200
        # The server forgets castproxy's registration: the next fetch registers again and succeeds.
        registered = {client_id for client_id in app.state.oauth.clients if client_id.startswith("dcr_")}
        for client_id in registered:
            app.state.oauth.forget_client(client_id)
        clock.advance(LIFETIME + 1)
        second = await oauth.service_token()
        assert second != first
        assert {c for c in app.state.oauth.clients if c.startswith("dcr_")} - registered, "registered again"
        assert await call_api(server.url, second) == 200
    finally:
        await oauth.aclose()
