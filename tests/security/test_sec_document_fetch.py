"""Client ID metadata document fetching: addresses that embed a private IPv4, and a slow drip of bytes."""

from __future__ import annotations

import asyncio
import time

import httpx2
import pytest

from castproxy.auth.server.documents import DocumentError, DocumentFetcher

CLIENT_URL = "https://client.example/oauth/metadata.json"


def _fetcher(addresses: list[str], handler, **kwargs) -> DocumentFetcher:
    async def resolve(name: str, port: int) -> list[str]:
        return addresses

    return DocumentFetcher(resolve=resolve, transport=httpx2.MockTransport(handler), **kwargs)


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",  # IPv4-compatible (deprecated) form of loopback
        "::a00:1",  # IPv4-compatible 10.0.0.1
        "64:ff9b::a00:1",  # NAT64 well-known prefix -> 10.0.0.1 behind a NAT64 gateway
        "64:ff9b::a9fe:a9fe",  # NAT64 -> 169.254.169.254 (cloud metadata)
        "64:ff9b:1::a00:1",  # local-use NAT64 prefix (RFC 8215)
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    ],
)
async def test_ipv6_forms_embedding_a_private_ipv4_are_refused(address: str) -> None:
    requests: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        return httpx2.Response(200, json={})

    with pytest.raises(DocumentError, match="non-public address"):
        await _fetcher([address], handler).fetch_document(CLIENT_URL)
    assert requests == []


async def test_a_slow_drip_is_cut_by_a_total_deadline() -> None:
    async def drip():
        for _ in range(1000):
            await asyncio.sleep(0.05)  # each read is quick, the whole answer never ends
            yield b" "

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "application/json"}, content=drip())

    started = time.monotonic()
    with pytest.raises(DocumentError, match="timed out"):
        await _fetcher(["93.184.215.14"], handler, timeout=0.5).fetch_document(CLIENT_URL)
    assert time.monotonic() - started < 3
