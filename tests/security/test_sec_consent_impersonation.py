"""A URL client_id with a loopback redirect proves nothing (any local program can claim it, RFC 8252 §8.6):
its consent page carries a warning, and a remembered approval must not skip that page silently."""

from __future__ import annotations

from pathlib import Path

import httpx2
from support.auth_server import CLIENT_REDIRECT, harness_for, pkce

from castproxy.auth.server.documents import DocumentFetcher
from castproxy.store.sqlite import SQLiteStore

CLIENT_URL = "https://well-known-agent.example/oauth/client.json"


def _document_host(request: httpx2.Request) -> httpx2.Response:
    document = {"client_id": CLIENT_URL, "client_name": "Well-known Agent", "redirect_uris": [CLIENT_REDIRECT]}
    return httpx2.Response(200, json=document)


async def test_remembered_approval_does_not_skip_the_warning_for_a_url_client_on_loopback(tmp_path: Path) -> None:
    async def resolve(name: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    store = SQLiteStore(tmp_path / "state.db")
    fetcher = DocumentFetcher(resolve=resolve, transport=httpx2.MockTransport(_document_host))
    harness = harness_for(store, document_fetcher=fetcher)
    try:
        page = await harness.http.get("/authorize", params=harness.authorize_params(CLIENT_URL, pkce()[1]))
        assert "Any program running on it could claim" in page.text
        assert (await harness.approve(page)).status_code == 303
        # Later, a local program claims the same well-known client_id: the user is asked again.
        again = await harness.http.get("/authorize", params=harness.authorize_params(CLIENT_URL, pkce()[1]))
        assert again.status_code == 200, again.headers.get("location")
        assert "Any program running on it could claim" in again.text
    finally:
        await harness.aclose()
        await store.close()
