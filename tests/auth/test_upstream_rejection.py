"""UpstreamOAuth when the upstream refuses a token before its expiry (`rejected=`), against the bundled test server.

The test server revokes one access token through its RFC 7009 endpoint (the refresh token stays
valid), or the whole grant (`revoke_all`). A wrapper in front of it counts the token requests by
grant type, so "one refresh however many calls were refused" is counted at the upstream itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2
import pytest
from pydantic import SecretStr
from support.auth_server import bridge_credentials
from support.recording import UpstreamRecorder, revoke
from support.redis import REDIS_URL

from castproxy.auth.credentials import SignInRequired, bearer_token
from castproxy.auth.upstream_oauth import NS_GRANT, UpstreamAuthError, UpstreamOAuth
from castproxy.config.model import OAuth2Auth
from castproxy.store.crypto import Cipher
from castproxy.store.redis import RedisStore
from castproxy.store.sqlite import SQLiteStore
from castproxy.testserver.app import create_app
from castproxy.testserver.runner import RunningServer, run_in_thread

CALLBACK = "http://castproxy.test/oauth/callback"
SECRET = "cs-canary-rejection-5521"
CLIENT_ID = "test-client-id"


class Upstream:
    def __init__(self) -> None:
        self.app = create_app("oauth", auto_approve=True, redirect_uris=[CALLBACK], client_secret=SECRET)
        self.counter = UpstreamRecorder(self.app)
        self.server: RunningServer = run_in_thread(self.counter)
        self.url = self.server.url

    @property
    def oauth(self) -> Any:
        return self.app.state.oauth

    async def revoke(self, token: str) -> None:
        """RFC 7009 revocation of one access token: the grant (its refresh token) stays valid."""
        await revoke(self.url, token, SECRET)

    async def api_status(self, token: str) -> int:
        async with httpx2.AsyncClient() as http:
            response = await http.get(f"{self.url}/api/items", headers={"Authorization": f"Bearer {token}"})
        return response.status_code


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    running = Upstream()
    yield running
    running.server.stop()


def config(upstream: Upstream, **overrides: Any) -> OAuth2Auth:
    settings: dict[str, Any] = {
        "type": "oauth2",
        "authorization_url": f"{upstream.url}/auth/authorize",
        "token_url": f"{upstream.url}/auth/token",
        "client_id": CLIENT_ID,
        "client_secret": SecretStr(SECRET),
        "scopes": ["read:items"],
    }
    settings.update(overrides)
    return OAuth2Auth(**settings)


@pytest.fixture
async def make_oauth(store: SQLiteStore) -> AsyncIterator[Any]:
    made: list[UpstreamOAuth] = []

    def make(auth: OAuth2Auth, **options: Any) -> UpstreamOAuth:
        cipher = Cipher.from_secret("r" * 40)
        oauth = UpstreamOAuth("items", auth, store=store, cipher=cipher, callback_url=CALLBACK, **options)
        made.append(oauth)
        return oauth

    yield make
    for oauth in made:
        await oauth.aclose()


async def sign_in(oauth: UpstreamOAuth) -> str:
    async with httpx2.AsyncClient() as http:
        response = await http.get((await oauth.start_sign_in({})).url)
    assert response.status_code == 302, response.text
    params = dict(parse_qsl(urlsplit(response.headers["location"]).query))
    return (await oauth.complete_sign_in(params)).grant_id


# ---- authorization_code grants -------------------------------------------------------------------


async def test_twenty_calls_refused_with_one_token_cause_one_refresh(upstream: Upstream, make_oauth: Any) -> None:
    oauth = make_oauth(config(upstream))
    grant_id = await sign_in(oauth)
    first = await oauth.access_token(grant_id)
    assert await upstream.api_status(first) == 200
    await upstream.revoke(first)  # revoked long before its one-hour expiry
    assert await upstream.api_status(first) == 401
    assert await oauth.access_token(grant_id) == first  # not expired: without `rejected` nothing changes

    tokens = await asyncio.gather(*(oauth.access_token(grant_id, rejected=first) for _ in range(20)))
    assert len(set(tokens)) == 1 and tokens[0] != first
    assert upstream.counter.grants["refresh_token"] == 1
    assert await upstream.api_status(tokens[0]) == 200

    # A call refused with the old token after the refresh gets the new one, without another refresh.
    assert await oauth.access_token(grant_id, rejected=first) == tokens[0]
    assert upstream.counter.grants["refresh_token"] == 1


async def test_refused_token_of_a_revoked_grant_ends_the_grant(
    upstream: Upstream, make_oauth: Any, store: SQLiteStore
) -> None:
    oauth = make_oauth(config(upstream))
    grant_id = await sign_in(oauth)
    token = await oauth.access_token(grant_id)
    upstream.oauth.revoke_all()  # access and refresh tokens: the refresh answers invalid_grant
    with pytest.raises(SignInRequired, match="no longer valid"):
        await oauth.access_token(grant_id, rejected=token)
    assert await store.get(NS_GRANT, grant_id) is None
    with pytest.raises(SignInRequired):
        await oauth.access_token(grant_id)
    assert upstream.counter.grants["refresh_token"] == 1  # the deleted grant is never refreshed again


async def test_refused_token_without_refresh_token_ends_the_grant(
    upstream: Upstream, make_oauth: Any, store: SQLiteStore
) -> None:
    upstream.oauth.clients[CLIENT_ID].grant_types = ("authorization_code",)  # it issues no refresh tokens
    oauth = make_oauth(config(upstream))
    grant_id = await sign_in(oauth)
    token = await oauth.access_token(grant_id)
    await upstream.revoke(token)
    with pytest.raises(SignInRequired, match=r"refused the access token .* no refresh token"):
        await oauth.access_token(grant_id, rejected=token)
    assert await store.get(NS_GRANT, grant_id) is None
    assert upstream.counter.grants["refresh_token"] == 0


async def test_refused_token_is_never_handed_out_again_when_the_refresh_fails(
    upstream: Upstream, make_oauth: Any, store: SQLiteStore
) -> None:
    oauth = make_oauth(config(upstream))
    grant_id = await sign_in(oauth)
    token = await oauth.access_token(grant_id)
    # The same workspace, while its token endpoint cannot be reached (same config: grants are bound to it).
    def unreachable(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    down = make_oauth(config(upstream), http=httpx2.AsyncClient(transport=httpx2.MockTransport(unreachable)))
    assert await down.access_token(grant_id) == token  # still valid: no refresh needed
    with pytest.raises(UpstreamAuthError, match="could not be reached"):
        await down.access_token(grant_id, rejected=token)
    assert await store.get(NS_GRANT, grant_id) is not None  # a failed refresh keeps the grant for a retry
    fresh = await oauth.access_token(grant_id, rejected=token)
    assert fresh != token and await upstream.api_status(fresh) == 200


async def test_a_token_that_is_not_the_stored_one_causes_no_refresh(upstream: Upstream, make_oauth: Any) -> None:
    oauth = make_oauth(config(upstream))
    grant_id = await sign_in(oauth)
    token = await oauth.access_token(grant_id)
    assert await oauth.access_token(grant_id, rejected="some-other-token") == token
    assert upstream.counter.grants["refresh_token"] == 0


async def test_two_replicas_on_one_redis_refresh_a_refused_token_once(upstream: Upstream, redis_prefix: str) -> None:
    stores = [RedisStore(REDIS_URL, prefix=redis_prefix) for _ in range(2)]
    cipher = Cipher.from_secret("r" * 40)
    replicas = [UpstreamOAuth("items", config(upstream), store=s, cipher=cipher, callback_url=CALLBACK) for s in stores]
    try:
        grant_id = await sign_in(replicas[0])
        first = await replicas[1].access_token(grant_id)
        await upstream.revoke(first)
        tokens = await asyncio.gather(*(replicas[i % 2].access_token(grant_id, rejected=first) for i in range(20)))
        assert len(set(tokens)) == 1 and tokens[0] != first
        assert upstream.counter.grants["refresh_token"] == 1
        assert await upstream.api_status(tokens[0]) == 200
    finally:
        for replica in replicas:
            await replica.aclose()
        for s in stores:
            await s.close()


# ---- client_credentials --------------------------------------------------------------------------


async def test_refused_service_token_is_fetched_again_once(upstream: Upstream, make_oauth: Any) -> None:
    oauth = make_oauth(config(upstream, grant="client_credentials", authorization_url=None))
    first = await oauth.service_token()
    assert await upstream.api_status(first) == 200
    await upstream.revoke(first)
    assert await oauth.service_token() == first  # not expired: without `rejected` nothing changes
    tokens = await asyncio.gather(*(oauth.service_token(rejected=first) for _ in range(20)))
    assert len(set(tokens)) == 1 and tokens[0] != first
    assert upstream.counter.grants["client_credentials"] == 2  # the first fetch and one re-fetch
    assert await upstream.api_status(tokens[0]) == 200
    assert await oauth.service_token(rejected="some-other-token") == tokens[0]
    assert upstream.counter.grants["client_credentials"] == 2


async def test_refused_service_token_is_not_kept_when_the_fetch_fails(upstream: Upstream, make_oauth: Any) -> None:
    oauth = make_oauth(config(upstream, grant="client_credentials", authorization_url=None))
    first = await oauth.service_token()
    upstream.oauth.clients[CLIENT_ID].client_secret = "changed-at-the-upstream"
    with pytest.raises(UpstreamAuthError, match="invalid_client"):
        await oauth.service_token(rejected=first)
    upstream.oauth.clients[CLIENT_ID].client_secret = SECRET
    renewed = await oauth.service_token()
    assert renewed != first and await upstream.api_status(renewed) == 200


# ---- the credential the serving layer applies ----------------------------------------------------


async def test_credentials_renew_only_the_refused_token(upstream: Upstream, make_oauth: Any) -> None:
    oauth = make_oauth(config(upstream, grant="client_credentials", authorization_url=None))
    credentials = bridge_credentials(oauth)
    headers: dict[str, str] = {}
    await credentials.apply(headers, None)
    first = bearer_token(headers)
    assert first is not None
    # Headers that already carry the token (a caller re-using a dict), with nothing refused: no renewal.
    await credentials.apply(headers, None)
    assert bearer_token(headers) == first and upstream.counter.grants["client_credentials"] == 1

    resend = {**headers, "Accept": "application/json"}
    await credentials.apply(resend, None, refused=first)
    assert bearer_token(resend) not in (None, first)
    assert resend["Accept"] == "application/json"
    assert [name for name in resend if name.lower() == "authorization"] == ["Authorization"]
    assert upstream.counter.grants["client_credentials"] == 2
