"""Issue 11, finding 3: nobody can lock a URL-identified client out of sign-in by spending the document fetch limit.

Before, ten `/authorize?client_id=https://host/junkN` from anyone spent the fetch allowance of `host`, and
the real client of that host got 429. Now fetches are counted per caller and host, a fetched document is
reused for its HTTP cache lifetime, and a known-good document is still used while a fetch is refused.
The document host is httpx2.MockTransport; time is a hand-moved clock.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx2
import pytest
from support.auth_server import CLIENT_REDIRECT, Harness, harness_for, pkce

from castproxy.auth.server.documents import DocumentFetcher
from castproxy.auth.server.limits import DOCUMENT_FETCHES, RateLimiter
from castproxy.store.sqlite import SQLiteStore

APP = "https://agents.example/app.json"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Host:
    """agents.example: a real client's document at /app.json (with `cache_control`), 404 for anything else."""

    def __init__(self) -> None:
        self.fetches: list[str] = []
        self.cache_control = "max-age=600"

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.fetches.append(request.url.path)
        if request.url.path != "/app.json":
            return httpx2.Response(404)
        body = {"client_id": APP, "client_name": "Agent", "redirect_uris": [CLIENT_REDIRECT]}
        headers = {"content-type": "application/json", "cache-control": self.cache_control}
        return httpx2.Response(200, content=json.dumps(body).encode(), headers=headers)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def host() -> Host:
    return Host()


@pytest.fixture
async def harness(tmp_path, clock: Clock, host: Host) -> AsyncIterator[Harness]:
    async def resolve(name: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    store = SQLiteStore(tmp_path / "state.db")
    fetcher = DocumentFetcher(
        resolve=resolve,
        transport=httpx2.MockTransport(host),
        limiter=RateLimiter(DOCUMENT_FETCHES, clock=clock),
    )
    harness = harness_for(store, document_fetcher=fetcher, clock=clock)
    yield harness
    await harness.aclose()
    await store.close()


async def authorize(harness: Harness, http: httpx2.AsyncClient, client_id: str) -> httpx2.Response:
    return await http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))


async def test_junk_from_one_caller_does_not_lock_out_the_real_client(harness: Harness) -> None:
    attacker = harness.caller("203.0.113.66")
    answers = [await authorize(harness, attacker, f"https://agents.example/junk{n}.json") for n in range(30)]
    assert 429 in {answer.status_code for answer in answers}  # the attacker is limited...
    user = harness.caller("198.51.100.20")
    page = await authorize(harness, user, APP)
    assert page.status_code == 200, page.text  # ...and the real client's user is not
    assert 'name="csrf_token"' in page.text


async def test_a_document_is_reused_for_its_cache_lifetime(harness: Harness, host: Host, clock: Clock) -> None:
    user = harness.caller("198.51.100.20")
    for _ in range(5):
        assert (await authorize(harness, user, APP)).status_code == 200
    assert host.fetches == ["/app.json"]
    clock.now += 599
    assert (await authorize(harness, user, APP)).status_code == 200
    assert host.fetches == ["/app.json"]
    clock.now += 2  # max-age=600 is over: fetched again
    assert (await authorize(harness, user, APP)).status_code == 200
    assert host.fetches == ["/app.json", "/app.json"]


@pytest.mark.parametrize(("cache_control", "reused_for"), [("no-store", 60), ("max-age=31536000", 86400), ("", 300)])
async def test_cache_lifetimes_are_bounded(
    harness: Harness, host: Host, clock: Clock, cache_control: str, reused_for: int
) -> None:
    host.cache_control = cache_control
    user = harness.caller("198.51.100.20")
    await authorize(harness, user, APP)
    clock.now += reused_for - 1
    await authorize(harness, user, APP)
    assert len(host.fetches) == 1
    clock.now += 2
    await authorize(harness, user, APP)
    assert len(host.fetches) == 2


async def test_a_known_good_document_is_used_while_fetches_are_refused(
    harness: Harness, host: Host, clock: Clock
) -> None:
    user = harness.caller("198.51.100.20")
    assert (await authorize(harness, user, APP)).status_code == 200
    clock.now += 3600  # stale now
    for n in range(DOCUMENT_FETCHES.burst):  # the same caller spends its own allowance on this host
        await authorize(harness, user, f"https://agents.example/junk{n}.json")
    assert (await authorize(harness, user, "https://agents.example/one-more.json")).status_code == 429
    page = await authorize(harness, user, APP)
    assert page.status_code == 200, page.text
