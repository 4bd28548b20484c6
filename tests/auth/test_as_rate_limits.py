"""Rate limits on work a caller can make castproxy keep or send out: registrations and document fetches.

Time is a hand-moved clock given to the limiters, never a sleep. Registrations come from several
caller addresses (ASGITransport's `client`); the document host is httpx2.MockTransport, as in
test_as_documents.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx2
import pytest
from starlette.applications import Starlette
from support.auth_server import CLIENT_REDIRECT, PUBLIC_URL, Harness, harness_for, pkce

from castproxy.auth.server.auth_server import AuthServer
from castproxy.auth.server.clients import ClientRegistry
from castproxy.auth.server.documents import DocumentFetcher
from castproxy.auth.server.limits import DOCUMENT_FETCHES, REGISTRATIONS, RateLimit, RateLimiter, caller_key
from castproxy.auth.server.routes import build_routes
from castproxy.auth.server.token_service import TokenService
from castproxy.store.sqlite import SQLiteStore

PUBLIC_ADDRESS = "93.184.215.14"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Callers:
    """castproxy's auth routes with a registration limiter on `clock`, reachable from any caller address."""

    def __init__(self, store: SQLiteStore, clock: Clock) -> None:
        self.server = AuthServer(
            store=store,
            public_url=PUBLIC_URL,
            clients=ClientRegistry(store, DocumentFetcher()),
            tokens=TokenService(store),
            registration_limiter=RateLimiter(REGISTRATIONS, clock=clock),
        )
        self.app = Starlette(routes=build_routes(self.server))
        self.clients: list[httpx2.AsyncClient] = []

    def client(self, address: str) -> httpx2.AsyncClient:
        transport = httpx2.ASGITransport(app=self.app, client=(address, 40000))
        self.clients.append(httpx2.AsyncClient(transport=transport, base_url=PUBLIC_URL))
        return self.clients[-1]

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def callers(store: SQLiteStore, clock: Clock) -> AsyncIterator[Callers]:
    callers = Callers(store, clock)
    yield callers
    await callers.aclose()


async def register(client: httpx2.AsyncClient) -> httpx2.Response:
    return await client.post("/register", json={"redirect_uris": [CLIENT_REDIRECT], "client_name": "Flood"})


async def test_the_eleventh_registration_in_a_burst_gets_429_with_retry_after(callers: Callers) -> None:
    flood = callers.client("203.0.113.7")
    for _ in range(REGISTRATIONS.burst):
        assert (await register(flood)).status_code == 201
    refused = await register(flood)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "3"  # 20 a minute: one more every 3 s
    assert refused.json() == {
        "error": "temporarily_unavailable",
        "error_description": "too many client registrations from this address; retry in 3 s",
    }
    assert refused.headers["cache-control"] == "no-store"
    assert refused.headers["access-control-allow-origin"] == "*"
    assert "Retry-After" in refused.headers["access-control-expose-headers"]


async def test_another_address_is_unaffected(callers: Callers) -> None:
    flood = callers.client("203.0.113.7")
    for _ in range(REGISTRATIONS.burst + 5):
        await register(flood)
    assert (await register(flood)).status_code == 429
    assert (await register(callers.client("198.51.100.20"))).status_code == 201


async def test_addresses_in_one_ipv6_64_share_a_bucket(callers: Callers) -> None:
    """A caller given a /64 cannot get a fresh burst by changing the low 64 bits."""
    for host in range(REGISTRATIONS.burst):
        assert (await register(callers.client(f"2001:db8:1:2::{host + 1:x}"))).status_code == 201
    assert (await register(callers.client("2001:db8:1:2:ffff::1"))).status_code == 429
    assert (await register(callers.client("2001:db8:1:3::1"))).status_code == 201


async def test_registration_works_again_after_the_refill_time(callers: Callers, clock: Clock) -> None:
    flood = callers.client("203.0.113.7")
    for _ in range(REGISTRATIONS.burst):
        await register(flood)
    assert (await register(flood)).status_code == 429
    clock.now += 2.9
    assert (await register(flood)).status_code == 429
    clock.now += 0.1  # 3 s: one token back, and only one
    assert (await register(flood)).status_code == 201
    assert (await register(flood)).status_code == 429
    clock.now += 60  # a quiet minute refills up to the burst, not beyond
    for _ in range(REGISTRATIONS.burst):
        assert (await register(flood)).status_code == 201
    assert (await register(flood)).status_code == 429


# --- client ID metadata document fetches, per client_id host -------------------------------------------


class DocumentHosts:
    """Answers for every host with a valid document for the URL asked, and counts the fetches per host."""

    def __init__(self) -> None:
        self.fetches: dict[str, int] = {}

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        host = request.headers["host"]
        self.fetches[host] = self.fetches.get(host, 0) + 1
        url = f"https://{host}{request.url.path}"
        body = {"client_id": url, "client_name": "Agent", "redirect_uris": [CLIENT_REDIRECT]}
        return httpx2.Response(200, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


@pytest.fixture
async def documents(store: SQLiteStore, clock: Clock) -> AsyncIterator[tuple[Harness, DocumentHosts]]:
    hosts = DocumentHosts()

    async def resolve(name: str, port: int) -> list[str]:
        return [PUBLIC_ADDRESS]

    fetcher = DocumentFetcher(
        resolve=resolve,
        transport=httpx2.MockTransport(hosts),
        limiter=RateLimiter(DOCUMENT_FETCHES, clock=clock),
    )
    harness = harness_for(store, document_fetcher=fetcher)
    yield harness, hosts
    await harness.aclose()


async def authorize(harness: Harness, client_id: str) -> httpx2.Response:
    return await harness.http.get("/authorize", params=harness.authorize_params(client_id, pkce()[1]))


async def test_document_fetches_beyond_the_burst_get_a_429_page(documents: tuple[Harness, DocumentHosts]) -> None:
    harness, hosts = documents
    for number in range(DOCUMENT_FETCHES.burst):
        assert (await authorize(harness, f"https://agents.example/{number}.json")).status_code == 200
    refused = await authorize(harness, "https://agents.example/one-more.json")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"  # 30 a minute: one more every 2 s
    assert refused.headers["content-type"].startswith("text/html")
    assert "too many client metadata document fetches from agents.example lately; retry in 2 s" in refused.text
    assert refused.headers["x-frame-options"] == "DENY"
    assert hosts.fetches == {"agents.example": DOCUMENT_FETCHES.burst}  # the refused one sent nothing out


async def test_a_cached_document_is_not_counted(documents: tuple[Harness, DocumentHosts]) -> None:
    harness, hosts = documents
    for _ in range(DOCUMENT_FETCHES.burst * 2):
        assert (await authorize(harness, "https://agents.example/app.json")).status_code == 200
    assert hosts.fetches == {"agents.example": 1}


async def test_document_limit_is_per_host_and_refills(documents: tuple[Harness, DocumentHosts], clock: Clock) -> None:
    harness, hosts = documents
    for number in range(DOCUMENT_FETCHES.burst):
        await authorize(harness, f"https://agents.example/{number}.json")
    assert (await authorize(harness, "https://agents.example/late.json")).status_code == 429
    assert (await authorize(harness, "https://other.example/app.json")).status_code == 200
    clock.now += 2.0
    assert (await authorize(harness, "https://agents.example/late.json")).status_code == 200
    assert (await authorize(harness, "https://agents.example/later.json")).status_code == 429
    assert hosts.fetches == {"agents.example": DOCUMENT_FETCHES.burst + 1, "other.example": 1}


# --- the limiter itself -----------------------------------------------------------------------------------


def test_tracked_keys_stay_under_the_cap(clock: Clock) -> None:
    limiter = RateLimiter(RateLimit(per_minute=60, burst=1), max_keys=100, clock=clock)
    for number in range(10_000):
        assert limiter.take(f"198.51.100.{number}") == 0.0
        assert len(limiter._buckets) <= 100
    assert len(limiter._buckets) == 100


def test_eviction_drops_the_least_recently_seen_key(clock: Clock) -> None:
    limiter = RateLimiter(RateLimit(per_minute=60, burst=1), max_keys=3, clock=clock)
    for key in ("a", "b", "c"):
        assert limiter.take(key) == 0.0
    assert limiter.take("a") == pytest.approx(1.0)  # empty; and now the most recently seen
    assert limiter.take("d") == 0.0  # evicts b, the least recently seen
    assert limiter.take("a") > 0  # a kept its empty bucket
    assert limiter.take("c") > 0
    assert limiter.take("b") == 0.0  # b was forgotten, so it starts full again


def test_waits_and_caller_keys(clock: Clock) -> None:
    limiter = RateLimiter(RateLimit(per_minute=20, burst=2), clock=clock)
    assert limiter.take("k") == 0.0
    assert limiter.take("k") == 0.0
    assert limiter.take("k") == pytest.approx(3.0)
    clock.now += 1.5
    assert limiter.take("k") == pytest.approx(1.5)
    assert caller_key("203.0.113.7") == "203.0.113.7"
    assert caller_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert caller_key("2001:db8::1") == "2001:db8::/64"
    assert caller_key(None) == "unknown"
    with pytest.raises(ValueError, match="burst >= 1"):
        RateLimit(per_minute=10, burst=0)


async def test_the_bridge_takes_a_registration_limiter(store: SQLiteStore) -> None:
    harness = harness_for(store, registration_limiter=RateLimiter(RateLimit(per_minute=1, burst=1)))
    try:
        first = await harness.http.post("/register", json={"redirect_uris": ["http://127.0.0.1:3000/cb"]})
        second = await harness.http.post("/register", json={"redirect_uris": ["http://127.0.0.1:3000/cb"]})
        assert (first.status_code, second.status_code) == (201, 429)
    finally:
        await harness.aclose()
