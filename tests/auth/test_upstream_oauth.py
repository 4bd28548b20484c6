"""UpstreamOAuth against a real small OAuth server on loopback (Starlette + uvicorn in a thread).

The fake upstream below checks what a strict authorization server checks (client authentication,
exact redirect URI, PKCE S256, single-use codes, refresh-token rotation with reuse detection) and
counts what it was asked, so the tests can assert behaviour the upstream would notice. UpstreamOAuth and
the store read a FakeClock: "after expiry" is a clock step, not a sleep.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import logging
import os
import secrets
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

import httpx2
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from support import web
from support.auth_server import bridge_credentials
from support.clock import FakeClock
from support.redis import REDIS_URL
from support.servers import run

from castproxy.auth.credentials import SignInRequired
from castproxy.auth.upstream_oauth import (
    NS_CLIENT,
    NS_GRANT,
    NS_PENDING,
    SignInError,
    UpstreamAuthError,
    UpstreamOAuth,
)
from castproxy.config.model import OAuth2Auth
from castproxy.store.crypto import Cipher, hash_token, record_aad
from castproxy.store.redis import RedisStore
from castproxy.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
CALLBACK = "http://castproxy.test/oauth/callback"
CANARY_SECRET = "canary-client-secret-7f3e"
CANARY_TOKEN = "canary-upstream-token-91ab"
SECRET_KEY = "k" * 40


# ---- the fake upstream ---------------------------------------------------------------------------


class FakeUpstream:
    def __init__(self, *, lifetime: int = 3600, refresh_delay: float = 0.2) -> None:
        self.url = ""
        self.lifetime = lifetime
        self.refresh_delay = refresh_delay
        self.send_iss: str | None = "self"  # "self" = our own issuer; None = no iss; else that value
        self.announce_iss = True  # what the metadata says about sending iss
        self.deny = False
        self.counts: Counter[str] = Counter()
        self.authorize_queries: list[dict[str, str]] = []
        self.token_forms: list[dict[str, str]] = []
        self.clients: dict[str, dict] = {
            "static-client": {"secret": CANARY_SECRET, "redirect_uris": [CALLBACK], "method": "client_secret_basic"},
            "post-client": {"secret": CANARY_SECRET, "redirect_uris": [CALLBACK], "method": "client_secret_post"},
        }
        self.codes: dict[str, dict] = {}
        self.refresh_tokens: dict[str, dict] = {}
        self._serial = itertools.count(1)
        self.secret_lifetime = 0  # client_secret_expires_at for registrations; 0 = never

    def issue(self, client_id: str, scope: str, *, refresh: bool = True) -> dict:
        n = next(self._serial)
        answer = {
            "access_token": f"{CANARY_TOKEN}-at-{n}",
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "scope": scope,
        }
        if refresh:
            answer["refresh_token"] = f"{CANARY_TOKEN}-rt-{n}"
            self.refresh_tokens[answer["refresh_token"]] = {"client_id": client_id, "scope": scope, "used": False}
        return answer

    def revoke_all_refresh_tokens(self) -> None:
        self.refresh_tokens.clear()

    def forget_dynamic_clients(self) -> None:
        for client_id in [c for c in self.clients if c.startswith("dyn-")]:
            del self.clients[client_id]

    # endpoints

    async def metadata(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "registration_endpoint": f"{self.url}/register",
                "revocation_endpoint": f"{self.url}/revoke",
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": self.announce_iss,
            }
        )

    async def authorize(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.authorize_queries.append(query)
        client = self.clients.get(query.get("client_id", ""))
        if client is None or query.get("redirect_uri") not in client["redirect_uris"]:
            return PlainTextResponse("unknown client or redirect_uri", status_code=400)
        back: dict[str, str] = {}
        if "state" in query:
            back["state"] = query["state"]
        if self.send_iss is not None:
            back["iss"] = self.url if self.send_iss == "self" else self.send_iss
        if self.deny:
            back["error"] = "access_denied"
        else:
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "client_id": query["client_id"],
                "redirect_uri": query["redirect_uri"],
                "challenge": query.get("code_challenge"),
                "method": query.get("code_challenge_method"),
                "scope": query.get("scope", ""),
            }
            back["code"] = code
        return RedirectResponse(f"{query['redirect_uri']}?{urlencode(back)}", status_code=302)

    def _client_auth(self, request: Request, form: dict[str, str]) -> str | None:
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            client_id, secret, method = unquote_plus(client_id), unquote_plus(secret), "client_secret_basic"
        elif "client_secret" in form:
            client_id, secret, method = form.get("client_id", ""), form["client_secret"], "client_secret_post"
        else:
            client_id, secret, method = form.get("client_id", ""), None, "none"
        client = self.clients.get(client_id)
        if client is None or client["method"] != method or client["secret"] != secret:
            return None
        return client_id

    @staticmethod
    def _error(error: str, status: int = 400) -> Response:
        return JSONResponse({"error": error, "error_description": "refused"}, status_code=status)

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.token_forms.append(form)
        grant_type = form.get("grant_type")
        self.counts[f"token:{grant_type}"] += 1
        client_id = self._client_auth(request, form)
        if client_id is None:
            return self._error("invalid_client", 401)
        if grant_type == "authorization_code":
            code = self.codes.pop(form.get("code", ""), None)
            if code is None or code["client_id"] != client_id or code["redirect_uri"] != form.get("redirect_uri"):
                return self._error("invalid_grant")
            if code["challenge"] is not None:
                verifier = form.get("code_verifier", "")
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if code["method"] != "S256" or digest != code["challenge"]:
                    return self._error("invalid_grant")
            return JSONResponse(self.issue(client_id, code["scope"]))
        if grant_type == "refresh_token":
            await asyncio.sleep(self.refresh_delay)  # widens the window in which a second refresh would race
            record = self.refresh_tokens.get(form.get("refresh_token", ""))
            if record is None or record["used"] or record["client_id"] != client_id:
                return self._error("invalid_grant")
            record["used"] = True  # rotation: the old refresh token is single-use
            return JSONResponse(self.issue(client_id, record["scope"]))
        if grant_type == "client_credentials":
            await asyncio.sleep(self.refresh_delay)
            return JSONResponse(self.issue(client_id, form.get("scope", ""), refresh=False))
        return self._error("unsupported_grant_type")

    async def register(self, request: Request) -> Response:
        body = await request.json()
        self.counts["register"] += 1
        client_id = f"dyn-{next(self._serial)}"
        method = body.get("token_endpoint_auth_method", "client_secret_basic")
        secret = f"{CANARY_SECRET}-{client_id}"
        self.clients[client_id] = {"secret": secret, "redirect_uris": body.get("redirect_uris", []), "method": method}
        expires_at = int(time.time()) + self.secret_lifetime if self.secret_lifetime else 0
        return JSONResponse(
            {
                **body,
                "client_id": client_id,
                "client_secret": secret,
                "client_secret_expires_at": expires_at,
                "token_endpoint_auth_method": method,
            },
            status_code=201,
        )

    async def revoke(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.counts["revoke"] += 1
        self.refresh_tokens.pop(form.get("token", ""), None)
        return Response(status_code=200)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/oauth-authorization-server", self.metadata),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/register", self.register, methods=["POST"]),
                Route("/revoke", self.revoke, methods=["POST"]),
            ]
        )


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    fake = FakeUpstream(lifetime=3600)
    running = run(fake.app(), log_level="warning")
    fake.url = running.url
    yield fake
    running.stop()


# ---- helpers -------------------------------------------------------------------------------------


def oauth_config(upstream: FakeUpstream, **overrides) -> OAuth2Auth:
    settings = {
        "type": "oauth2",
        "provider": "custom",
        "grant": "authorization_code",
        "authorization_url": f"{upstream.url}/authorize",
        "token_url": f"{upstream.url}/token",
        "client_id": "static-client",
        "client_secret": SecretStr(CANARY_SECRET),
        "scopes": ["read:items", "write:items"],
        "pkce": True,
        "state": True,
    }
    settings.update(overrides)
    return OAuth2Auth(**settings)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path, clock) -> AsyncIterator[SQLiteStore]:
    backend = SQLiteStore(tmp_path / "state.db", clock=clock)
    yield backend
    await backend.close()


@pytest.fixture
def cipher() -> Cipher:
    return Cipher.from_secret(SECRET_KEY)


@pytest.fixture
async def make_oauth(store, cipher, clock) -> AsyncIterator:
    made: list[UpstreamOAuth] = []

    def make(auth: OAuth2Auth, *, workspace: str = "items", **kwargs) -> UpstreamOAuth:
        kwargs.setdefault("store", store)
        kwargs.setdefault("cipher", cipher)
        kwargs.setdefault("clock", clock)
        oauth = UpstreamOAuth(workspace, auth, callback_url=CALLBACK, **kwargs)
        made.append(oauth)
        return oauth

    yield make
    for oauth in made:
        await oauth.aclose()


async def browser(url: str) -> dict[str, str]:
    """What a browser does with the authorization URL: follow it to the callback, return its query."""
    async with httpx2.AsyncClient(verify=web.TLS) as client:
        response = await client.get(url)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    return dict(parse_qsl(urlsplit(location).query))


async def sign_in(oauth: UpstreamOAuth, context: dict | None = None) -> str:
    params = await browser((await oauth.start_sign_in(context or {})).url)
    return (await oauth.complete_sign_in(params)).grant_id


# ---- sign-in ---------------------------------------------------------------------------------------


async def test_full_sign_in(upstream, make_oauth, store):
    oauth = make_oauth(oauth_config(upstream, audience="https://api.example.test"))
    url = (await oauth.start_sign_in({"client": "mcp-client-1", "n": 3})).url
    query = dict(parse_qsl(urlsplit(url).query))
    assert url.startswith(f"{upstream.url}/authorize?")
    assert query["response_type"] == "code"
    assert query["client_id"] == "static-client"
    assert query["redirect_uri"] == CALLBACK
    assert query["scope"] == "read:items write:items"
    assert query["code_challenge_method"] == "S256"
    assert len(query["state"]) >= 40
    assert query["resource"] == "https://api.example.test"
    assert "client_secret" not in url and CANARY_SECRET not in url

    params = await browser(url)
    assert params["iss"] == upstream.url
    result = await oauth.complete_sign_in(params)
    assert result.context == {"client": "mcp-client-1", "n": 3}
    # The upstream checked the PKCE verifier against the challenge before issuing anything.
    exchange = upstream.token_forms[-1]
    assert exchange["grant_type"] == "authorization_code"
    assert exchange["redirect_uri"] == CALLBACK
    assert exchange["resource"] == "https://api.example.test"
    digest = hashlib.sha256(exchange["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == query["code_challenge"]

    token = await oauth.access_token(result.grant_id)
    assert token.startswith(CANARY_TOKEN)
    # At rest the grant is ciphertext: neither token appears in the stored bytes.
    blob = await store.get(NS_GRANT, result.grant_id)
    assert blob is not None and CANARY_TOKEN.encode() not in blob


async def test_grant_survives_a_restart(upstream, tmp_path, cipher):
    path = tmp_path / "restart.db"
    first_store = SQLiteStore(path)
    first = UpstreamOAuth("items", oauth_config(upstream), store=first_store, cipher=cipher, callback_url=CALLBACK)
    grant_id = await sign_in(first)
    token = await first.access_token(grant_id)
    await first.aclose()
    await first_store.close()

    second_store = SQLiteStore(path)
    second = UpstreamOAuth(
        "items",
        oauth_config(upstream),
        store=second_store,
        cipher=Cipher.from_secret(SECRET_KEY),
        callback_url=CALLBACK,
    )
    try:
        assert await second.access_token(grant_id) == token
    finally:
        await second.aclose()
        await second_store.close()


async def test_without_pkce_no_challenge_and_no_verifier(upstream, make_oauth):
    oauth = make_oauth(oauth_config(upstream, pkce=False))
    url = (await oauth.start_sign_in({})).url
    assert "code_challenge" not in url
    await oauth.complete_sign_in(await browser(url))
    assert "code_verifier" not in upstream.token_forms[-1]


async def test_client_secret_post(upstream, make_oauth):
    oauth = make_oauth(oauth_config(upstream, client_id="post-client", token_endpoint_auth_method="client_secret_post"))
    grant_id = await sign_in(oauth)
    assert upstream.token_forms[-1]["client_secret"] == CANARY_SECRET
    assert (await oauth.access_token(grant_id)).startswith(CANARY_TOKEN)


async def test_wrong_client_auth_method_is_refused_by_the_upstream(upstream, make_oauth):
    # static-client is registered for client_secret_basic; posting the secret must fail, with a safe message.
    oauth = make_oauth(oauth_config(upstream, token_endpoint_auth_method="client_secret_post"))
    params = await browser((await oauth.start_sign_in({})).url)
    with pytest.raises(SignInError) as caught:
        await oauth.complete_sign_in(params)
    assert str(caught.value) == (
        "The upstream did not accept the sign-in: the upstream token endpoint answered HTTP 401 (invalid_client). "
        "Start the sign-in again."
    )


async def test_state_missing(upstream, make_oauth):
    oauth = make_oauth(oauth_config(upstream))
    params = await browser((await oauth.start_sign_in({})).url)
    del params["state"]
    with pytest.raises(SignInError, match=r"^The sign-in answer carries no state\. Start the sign-in again\.$"):
        await oauth.complete_sign_in(params)


async def test_state_wrong(upstream, make_oauth):
    oauth = make_oauth(oauth_config(upstream))
    params = await browser((await oauth.start_sign_in({})).url)
    params["state"] = params["state"][:-1] + ("A" if params["state"][-1] != "A" else "B")
    with pytest.raises(SignInError, match=r"^The sign-in state is unknown, already used or expired\."):
        await oauth.complete_sign_in(params)
    assert upstream.counts["token:authorization_code"] == 0


async def test_state_reused(upstream, make_oauth):
    oauth = make_oauth(oauth_config(upstream))
    params = await browser((await oauth.start_sign_in({})).url)
    await oauth.complete_sign_in(params)
    with pytest.raises(SignInError, match=r"^The sign-in state is unknown, already used or expired\."):
        await oauth.complete_sign_in(params)
    assert upstream.counts["token:authorization_code"] == 1


async def test_state_expired(upstream, make_oauth, clock):
    oauth = make_oauth(oauth_config(upstream), sign_in_ttl=0.3)
    params = await browser((await oauth.start_sign_in({})).url)
    clock.advance(0.45)
    with pytest.raises(SignInError, match=r"^The sign-in state is unknown, already used or expired\."):
        await oauth.complete_sign_in(params)


async def test_state_of_another_workspace(upstream, make_oauth, store, cipher):
    items = make_oauth(oauth_config(upstream), workspace="items")
    users = make_oauth(oauth_config(upstream), workspace="users")
    params = await browser((await items.start_sign_in({})).url)
    with pytest.raises(SignInError, match="belongs to another workspace"):
        await users.complete_sign_in(params)


async def test_a_pending_sign_in_keeps_its_json_and_a_malformed_one_is_an_unknown_state(upstream, make_oauth, store,
                                                                                      cipher):
    oauth = make_oauth(oauth_config(upstream))
    params = await browser((await oauth.start_sign_in({"k": "v"})).url)
    key = hash_token(params["state"])
    stored = json.loads(cipher.decrypt(await store.get(NS_PENDING, key), aad=record_aad(NS_PENDING, key)))
    # The keys json.dumps of a dict wrote before the TypeAdapter: a sign-in started by the old version completes.
    assert set(stored) == {"workspace", "verifier", "context", "client_id", "scopes", "expires_at"}
    assert (await oauth.complete_sign_in(params)).context == {"k": "v"}
    params = await browser((await oauth.start_sign_in({})).url)
    key = hash_token(params["state"])
    await store.put(NS_PENDING, key, cipher.encrypt(b'{"workspace": "items"}', aad=record_aad(NS_PENDING, key)))
    with pytest.raises(SignInError, match=r"^The sign-in state is unknown, already used or expired\."):
        await oauth.complete_sign_in(params)


async def test_state_false_takes_the_state_from_the_caller(upstream, make_oauth):
    oauth = make_oauth(oauth_config(upstream, state=False))
    pending = await oauth.start_sign_in({"k": "v"})
    assert "state=" not in pending.url
    params = await browser(pending.url)
    with pytest.raises(SignInError, match="no state"):
        await oauth.complete_sign_in(params)
    pending = await oauth.start_sign_in({"k": "v"})
    result = await oauth.complete_sign_in(await browser(pending.url), state=pending.state)
    assert result.context == {"k": "v"}


async def test_upstream_refusal_is_a_safe_sign_in_error(upstream, make_oauth):
    oauth = make_oauth(oauth_config(upstream))
    upstream.deny = True
    params = await browser((await oauth.start_sign_in({})).url)
    with pytest.raises(SignInError, match=r"^The upstream refused the sign-in \(access_denied\)\.$"):
        await oauth.complete_sign_in(params)
    # An error code that is not a plain word is not echoed.
    params = await browser((await oauth.start_sign_in({})).url)
    params["error"] = "<script>alert(1)</script>"
    with pytest.raises(SignInError, match=r"\(unknown_error\)"):
        await oauth.complete_sign_in(params)


async def test_iss_mismatch_is_refused(upstream, make_oauth):
    oauth = make_oauth(oauth_config(upstream))
    upstream.send_iss = "https://evil.example"
    params = await browser((await oauth.start_sign_in({})).url)
    with pytest.raises(SignInError, match=r"iss mismatch"):
        await oauth.complete_sign_in(params)
    assert upstream.counts["token:authorization_code"] == 0


async def test_iss_checked_against_configured_issuer(upstream, make_oauth):
    oauth = make_oauth(oauth_config(upstream, issuer=upstream.url))
    await sign_in(oauth)
    upstream.send_iss = f"{upstream.url}/other"
    params = await browser((await oauth.start_sign_in({})).url)
    with pytest.raises(SignInError, match=r"iss mismatch"):
        await oauth.complete_sign_in(params)


async def test_iss_missing_although_announced(upstream, make_oauth):
    # The metadata announces iss in every answer: an answer without it is refused.
    oauth = make_oauth(oauth_config(upstream, issuer=upstream.url))
    upstream.send_iss = None
    params = await browser((await oauth.start_sign_in({})).url)
    with pytest.raises(SignInError, match="lacks the iss parameter"):
        await oauth.complete_sign_in(params)
    upstream.announce_iss = False
    assert await sign_in(make_oauth(oauth_config(upstream, issuer=upstream.url)))


async def test_code_reuse_at_the_upstream_is_a_sign_in_error(upstream, make_oauth, store, cipher):
    oauth = make_oauth(oauth_config(upstream))
    url = (await oauth.start_sign_in({})).url
    params = await browser(url)
    await oauth.complete_sign_in(params)
    # Replay the same code with a fresh state: the upstream refuses the used code.
    fresh = await browser((await oauth.start_sign_in({})).url)
    fresh["code"] = params["code"]
    with pytest.raises(SignInError, match=r"invalid_grant"):
        await oauth.complete_sign_in(fresh)


# ---- tokens and refresh ------------------------------------------------------------------------------


async def test_twenty_concurrent_calls_after_expiry_refresh_once(upstream, make_oauth, clock):
    upstream.lifetime = 1
    oauth = make_oauth(oauth_config(upstream))
    grant_id = await sign_in(oauth)
    first = await oauth.access_token(grant_id)
    clock.advance(1.1)
    tokens = await asyncio.gather(*(oauth.access_token(grant_id) for _ in range(20)))
    assert upstream.counts["token:refresh_token"] == 1
    assert len(set(tokens)) == 1 and tokens[0] != first and tokens[0].startswith(CANARY_TOKEN)
    # The rotated refresh token was saved: the next refresh uses it (the old one would be invalid_grant).
    clock.advance(1.1)
    again = await asyncio.gather(*(oauth.access_token(grant_id) for _ in range(5)))
    assert upstream.counts["token:refresh_token"] == 2
    assert len(set(again)) == 1 and again[0] != tokens[0]


async def _age_grant(oauth: UpstreamOAuth, grant_id: str, *, expires_in: float) -> str:
    """Rewrite the stored grant as issued 100 s ago and expiring in `expires_in` s; returns its access token."""
    tokens = await oauth._read_grant(grant_id)
    now = oauth._clock()
    await oauth._write_grant(grant_id, replace(tokens, obtained_at=now - 100, expires_at=now + expires_in))
    return tokens.access_token


async def test_refresh_ahead_of_expiry(upstream, make_oauth):
    oauth = make_oauth(oauth_config(upstream))
    grant_id = await sign_in(oauth)
    # Lifetime 105 s: refreshed once fewer than 10% (10.5 s) remain, here 5 s before expiry.
    old = await _age_grant(oauth, grant_id, expires_in=20)
    assert await oauth.access_token(grant_id) == old
    assert upstream.counts["token:refresh_token"] == 0
    await _age_grant(oauth, grant_id, expires_in=5)
    assert await oauth.access_token(grant_id) != old
    assert upstream.counts["token:refresh_token"] == 1


async def test_upstream_down_keeps_a_still_valid_token(upstream, make_oauth):
    working = make_oauth(oauth_config(upstream))
    grant_id = await sign_in(working)
    def unreachable(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    # The same config (a grant is bound to its upstream), but the upstream cannot be reached.
    broken = make_oauth(oauth_config(upstream), http=httpx2.AsyncClient(transport=httpx2.MockTransport(unreachable)))
    token = await _age_grant(working, grant_id, expires_in=5)
    assert await broken.access_token(grant_id) == token  # refresh failed, token not yet expired
    await _age_grant(working, grant_id, expires_in=-1)
    with pytest.raises(UpstreamAuthError, match="could not be reached"):
        await broken.access_token(grant_id)
    assert await working.access_token(grant_id) != token  # the grant itself was kept


async def test_invalid_grant_deletes_the_grant(upstream, make_oauth, store, clock):
    upstream.lifetime = 1
    oauth = make_oauth(oauth_config(upstream))
    grant_id = await sign_in(oauth)
    upstream.revoke_all_refresh_tokens()
    clock.advance(1.1)
    results = await asyncio.gather(*(oauth.access_token(grant_id) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, SignInRequired) for r in results)
    assert upstream.counts["token:refresh_token"] == 1
    assert await store.get(NS_GRANT, grant_id) is None
    with pytest.raises(SignInRequired):
        await oauth.access_token(grant_id)


async def test_tampered_grant_reads_as_no_grant(upstream, make_oauth, store):
    oauth = make_oauth(oauth_config(upstream))
    grant_id = await sign_in(oauth)
    blob = bytearray(await store.get(NS_GRANT, grant_id))
    blob[-5] ^= 0xFF
    await store.put(NS_GRANT, grant_id, bytes(blob))
    with pytest.raises(SignInRequired):
        await oauth.access_token(grant_id)


async def test_wrong_secret_key_reads_as_no_grant_and_rotation_keeps_it(upstream, make_oauth, store):
    oauth = make_oauth(oauth_config(upstream))
    grant_id = await sign_in(oauth)
    other_key = make_oauth(oauth_config(upstream), cipher=Cipher.from_secret("x" * 40))
    with pytest.raises(SignInRequired):
        await other_key.access_token(grant_id)
    rotated = make_oauth(oauth_config(upstream), cipher=Cipher.from_secret("x" * 40, previous=[SECRET_KEY]))
    assert (await rotated.access_token(grant_id)).startswith(CANARY_TOKEN)


async def test_grant_of_another_workspace_is_no_grant(upstream, make_oauth):
    items = make_oauth(oauth_config(upstream), workspace="items")
    users = make_oauth(oauth_config(upstream), workspace="users")
    grant_id = await sign_in(items)
    with pytest.raises(SignInRequired):
        await users.access_token(grant_id)
    with pytest.raises(SignInRequired):
        await items.access_token("no-such-grant")


async def test_credentials_apply(upstream, make_oauth):
    oauth = make_oauth(oauth_config(upstream))
    grant_id = await sign_in(oauth)
    credentials = bridge_credentials(oauth)
    assert credentials.protected_headers == frozenset({"authorization"})
    headers: dict[str, str] = {}
    await credentials.apply(headers, grant_id)
    assert headers["Authorization"] == f"Bearer {await oauth.access_token(grant_id)}"
    with pytest.raises(SignInRequired):
        await credentials.apply({}, None)


async def test_revoke(upstream, make_oauth, store):
    oauth = make_oauth(oauth_config(upstream, revocation_url=f"{upstream.url}/revoke"))
    grant_id = await sign_in(oauth)
    assert len(upstream.refresh_tokens) == 1
    await oauth.revoke(grant_id)
    assert upstream.counts["revoke"] == 1 and upstream.refresh_tokens == {}
    assert await store.get(NS_GRANT, grant_id) is None
    with pytest.raises(SignInRequired):
        await oauth.access_token(grant_id)
    await oauth.revoke(grant_id)  # already gone: nothing happens


# ---- client_credentials --------------------------------------------------------------------------


async def test_client_credentials_one_fetch_then_renewal(upstream, make_oauth, clock):
    upstream.lifetime = 1
    oauth = make_oauth(oauth_config(upstream, grant="client_credentials", authorization_url=None))
    tokens = await asyncio.gather(*(oauth.service_token() for _ in range(20)))
    assert upstream.counts["token:client_credentials"] == 1
    assert len(set(tokens)) == 1
    assert upstream.token_forms[-1]["scope"] == "read:items write:items"
    clock.advance(1.1)
    renewed = await asyncio.gather(*(oauth.service_token() for _ in range(20)))
    assert upstream.counts["token:client_credentials"] == 2
    assert len(set(renewed)) == 1 and renewed[0] != tokens[0]
    headers: dict[str, str] = {}
    await bridge_credentials(oauth).apply(headers, None)
    assert headers["Authorization"] == f"Bearer {renewed[0]}"
    with pytest.raises(SignInError, match="no user sign-in"):
        await oauth.start_sign_in({})


async def test_client_credentials_bad_secret_is_a_safe_error(upstream, make_oauth):
    oauth = make_oauth(oauth_config(upstream, grant="client_credentials", client_secret=SecretStr("wrong")))
    with pytest.raises(UpstreamAuthError) as caught:
        await oauth.service_token()
    assert str(caught.value) == "workspace items: the upstream token endpoint answered HTTP 401 (invalid_client)"


# ---- dcr -------------------------------------------------------------------------------------------


def dcr_config(upstream: FakeUpstream, **overrides) -> OAuth2Auth:
    settings = {
        "type": "oauth2",
        "provider": "dcr",
        "issuer": upstream.url,
        "scopes": ["read:items"],
    }
    settings.update(overrides)
    return OAuth2Auth(**settings)


async def test_dcr_discovers_registers_once_and_signs_in(upstream, make_oauth, store):
    oauth = make_oauth(dcr_config(upstream))
    started = await asyncio.gather(*(oauth.start_sign_in({}) for _ in range(5)))
    assert upstream.counts["register"] == 1
    grant_id = (await oauth.complete_sign_in(await browser(started[0].url))).grant_id
    assert (await oauth.access_token(grant_id)).startswith(CANARY_TOKEN)
    blob = await store.get(NS_CLIENT, "items")
    assert blob is not None and CANARY_SECRET.encode() not in blob
    # Another instance (a restart, or a second replica) reuses the stored registration.
    again = make_oauth(dcr_config(upstream))
    await again.start_sign_in({})
    assert upstream.counts["register"] == 1


async def test_a_registration_keeps_its_json_and_a_malformed_one_registers_again(upstream, make_oauth, store, cipher):
    await make_oauth(dcr_config(upstream)).start_sign_in({})
    aad = record_aad(NS_CLIENT, "items")
    stored = json.loads(cipher.decrypt(await store.get(NS_CLIENT, "items"), aad=aad))
    assert set(stored) == {"client_id", "client_secret", "auth_method", "registration_url", "token_endpoint",
                           "redirect_uri", "grant", "scopes", "secret_expires_at"}  # as before the TypeAdapter
    await make_oauth(dcr_config(upstream)).start_sign_in({})
    assert upstream.counts["register"] == 1
    await store.put(NS_CLIENT, "items", cipher.encrypt(b'{"client_id": "dyn-1"}', aad=aad))
    await make_oauth(dcr_config(upstream)).start_sign_in({})
    assert upstream.counts["register"] == 2


async def test_dcr_registers_again_when_the_client_is_rejected(upstream, make_oauth, clock):
    upstream.lifetime = 1
    oauth = make_oauth(dcr_config(upstream, grant="client_credentials"))
    first = await oauth.service_token()
    assert upstream.counts["register"] == 1
    upstream.forget_dynamic_clients()
    clock.advance(1.1)
    second = await oauth.service_token()
    assert second != first
    assert upstream.counts["register"] == 2
    assert upstream.counts["token:client_credentials"] == 3  # ok, rejected, ok after registering again


async def test_dcr_rejected_at_code_exchange_registers_again_for_the_next_sign_in(upstream, make_oauth):
    oauth = make_oauth(dcr_config(upstream))
    params = await browser((await oauth.start_sign_in({})).url)
    upstream.forget_dynamic_clients()
    with pytest.raises(SignInError, match="invalid_client"):
        await oauth.complete_sign_in(params)
    grant_id = await sign_in(oauth)
    assert upstream.counts["register"] == 2
    assert (await oauth.access_token(grant_id)).startswith(CANARY_TOKEN)


async def test_dcr_registers_again_after_a_config_change_or_before_the_secret_expires(upstream, make_oauth):
    await make_oauth(dcr_config(upstream)).start_sign_in({})
    await make_oauth(dcr_config(upstream)).start_sign_in({})
    assert upstream.counts["register"] == 1
    await make_oauth(dcr_config(upstream, scopes=["read:items", "write:items"])).start_sign_in({})
    assert upstream.counts["register"] == 2
    upstream.secret_lifetime = 30  # within castproxy's 60 s margin: renewed on next use
    oauth = make_oauth(dcr_config(upstream, scopes=["read:users"]))
    await oauth.start_sign_in({})
    assert upstream.counts["register"] == 3
    await oauth.start_sign_in({})
    assert upstream.counts["register"] == 4
    upstream.secret_lifetime = 3600
    await oauth.start_sign_in({})
    await oauth.start_sign_in({})
    assert upstream.counts["register"] == 5


async def test_dcr_without_metadata_is_a_clear_error(upstream, make_oauth):
    oauth = make_oauth(dcr_config(upstream, issuer="http://127.0.0.1:1"))
    with pytest.raises(
        SignInError,
        match=r"^workspace items: auth\.authorization_url is not set "
        r"and the metadata of http://127\.0\.0\.1:1 could not be fetched$",
    ):
        await oauth.start_sign_in({})


# ---- secrets stay secret ---------------------------------------------------------------------------


async def test_canaries_never_in_logs_or_errors(upstream, make_oauth, caplog, clock):
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    upstream.lifetime = 1
    oauth = make_oauth(oauth_config(upstream))
    grant_id = await sign_in(oauth)
    clock.advance(1.1)
    await oauth.access_token(grant_id)
    upstream.revoke_all_refresh_tokens()
    clock.advance(1.1)
    for attempt in (
        oauth.access_token(grant_id),
        make_oauth(oauth_config(upstream, client_secret=SecretStr(CANARY_SECRET + "x"))).complete_sign_in(
            await browser((await oauth.start_sign_in({})).url)
        ),
        make_oauth(oauth_config(upstream, grant="client_credentials", client_secret=SecretStr("no"))).service_token(),
    ):
        try:
            await attempt
        except Exception as exc:
            messages.append(f"{exc!s} {exc!r}")
    assert len(messages) == 3
    text = caplog.text + "\n".join(messages) + repr(oauth.auth)
    assert caplog.records, "the flow logs something"
    assert CANARY_TOKEN not in text
    assert CANARY_SECRET not in text


# ---- several replicas on one Redis -------------------------------------------------------------------


async def test_two_instances_on_two_redis_connections_refresh_once(upstream, redis_prefix, cipher, clock):
    upstream.lifetime = 1
    stores = [RedisStore(REDIS_URL, prefix=redis_prefix) for _ in range(2)]
    replicas = [
        UpstreamOAuth("items", oauth_config(upstream), store=s, cipher=cipher, callback_url=CALLBACK, clock=clock)
        for s in stores
    ]
    try:
        grant_id = await sign_in(replicas[0])
        clock.advance(1.1)
        tokens = await asyncio.gather(*(replicas[i % 2].access_token(grant_id) for i in range(20)))
        assert upstream.counts["token:refresh_token"] == 1
        assert len(set(tokens)) == 1
    finally:
        for replica in replicas:
            await replica.aclose()
        for s in stores:
            await s.close()


_REPLICA = textwrap.dedent(
    """
    import asyncio, json, sys
    from pydantic import SecretStr
    from castproxy.auth.upstream_oauth import UpstreamOAuth
    from castproxy.config.model import OAuth2Auth
    from castproxy.store.crypto import Cipher
    from castproxy.store.redis import RedisStore

    async def main(redis_url, prefix, upstream_url, callback, secret_key, client_secret, grant_id, now):
        store = RedisStore(redis_url, prefix=prefix)
        auth = OAuth2Auth(type="oauth2", authorization_url=upstream_url + "/authorize",
                          token_url=upstream_url + "/token", client_id="static-client",
                          client_secret=SecretStr(client_secret), scopes=["read:items", "write:items"])
        oauth = UpstreamOAuth("items", auth, store=store, cipher=Cipher.from_secret(secret_key), callback_url=callback,
                              clock=lambda: float(now))  # the parent's clock, stopped past the token's expiry
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the parent's go: both processes refresh at once
        tokens = await asyncio.gather(*(oauth.access_token(grant_id) for _ in range(10)))
        print(json.dumps(tokens))
        await oauth.aclose()
        await store.close()

    asyncio.run(main(*sys.argv[1:]))
    """
)


async def test_two_processes_on_one_redis_refresh_once(upstream, redis_prefix, cipher, clock):
    store = RedisStore(REDIS_URL, prefix=redis_prefix)
    oauth = UpstreamOAuth("items", oauth_config(upstream), store=store, cipher=cipher, callback_url=CALLBACK,
                          clock=clock)
    try:
        grant_id = await sign_in(oauth)
        clock.advance(upstream.lifetime)  # expired: for this process, and for the other, which reads clock()
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _REPLICA,
                REDIS_URL,
                redis_prefix,
                upstream.url,
                CALLBACK,
                SECRET_KEY,
                CANARY_SECRET,
                grant_id,
                str(clock()),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert child.stdin is not None and child.stdout is not None
        assert await asyncio.to_thread(child.stdout.readline) == b"ready\n"
        child.stdin.write(b"go\n")
        child.stdin.flush()
        ours = await asyncio.gather(*(oauth.access_token(grant_id) for _ in range(10)))
        out, _ = await asyncio.to_thread(child.communicate, timeout=30)
        assert child.returncode == 0
        theirs = json.loads(out)
        assert upstream.counts["token:refresh_token"] == 1
        assert len(set(ours + theirs)) == 1
    finally:
        await oauth.aclose()
        await store.close()
