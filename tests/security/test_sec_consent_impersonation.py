"""A URL client_id with a loopback redirect proves nothing (any local program can claim it, RFC 8252 §8.6):
its consent page carries a warning, and a remembered approval must not skip that page silently."""

from __future__ import annotations

from pathlib import Path

import httpx2
from auth_support import CLIENT_REDIRECT, PUBLIC_URL, WORKSPACES, FakeUpstream, Harness, pkce

from castproxy.auth.bridge import AuthBridge
from castproxy.auth.server.documents import DocumentFetcher
from castproxy.config.model import OAuth2Auth
from castproxy.store.crypto import Cipher
from castproxy.store.sqlite import SQLiteStore

CLIENT_URL = "https://well-known-agent.example/oauth/client.json"


def _document_host(request: httpx2.Request) -> httpx2.Response:
    document = {"client_id": CLIENT_URL, "client_name": "Well-known Agent", "redirect_uris": [CLIENT_REDIRECT]}
    return httpx2.Response(200, json=document)


async def test_remembered_approval_does_not_skip_the_warning_for_a_url_client_on_loopback(tmp_path: Path) -> None:
    async def resolve(name: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    store = SQLiteStore(tmp_path / "state.db")
    upstreams: dict[str, FakeUpstream] = {}

    def factory(name: str, auth: OAuth2Auth, callback_url: str) -> FakeUpstream:
        upstreams[name] = FakeUpstream(name, auth, callback_url)
        return upstreams[name]

    bridge = AuthBridge(
        store=store,
        cipher=Cipher.from_secret("s" * 32),
        public_url=PUBLIC_URL,
        upstream_factory=factory,
        document_fetcher=DocumentFetcher(resolve=resolve, transport=httpx2.MockTransport(_document_host)),
    )
    bridge.update(WORKSPACES)
    harness = Harness(bridge, upstreams)
    try:
        page = await harness.http.get("/authorize", params=harness.authorize_params(CLIENT_URL, pkce()[1]))
        assert "Any program running on it could claim" in page.text
        assert (await harness.approve(page)).status_code == 303
        # Later, a local program claims the same well-known client_id: the user is asked again.
        again = await harness.http.get("/authorize", params=harness.authorize_params(CLIENT_URL, pkce()[1]))
        assert again.status_code == 200, again.headers.get("location")
        assert "Any program running on it could claim" in again.text
    finally:
        await harness.http.aclose()
        await bridge.close()
        await store.close()
