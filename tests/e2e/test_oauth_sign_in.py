"""Per-user OAuth end to end: the bundled test upstream (its own OAuth server), the proxy on loopback,
and the `mcp` SDK client's OAuthClientProvider driving a browser stand-in through sign-in and consent.
In-process proxies and the upstream share one FakeClock: "after expiry" is a clock step, not a sleep.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from oauth_e2e_support import (
    SECRET_KEY,
    OAuthStack,
    call_concurrently,
    start_oauth_stack,
    start_oauth_upstream,
    write_config,
)
from support.clock import FakeClock
from support.net import free_port, free_socket
from support.oauth_client import Browser, MemoryStorage, mcp_session
from support.redis import require_redis
from support.serve_process import start_serve, stop_serve
from support.servers import run

from castproxy.serve.app import create_app

CLIENT_SECRET = "e2e-upstream-client-secret-0123456789"
SERVE_ENV = {"E2E_CLIENT_SECRET": CLIENT_SECRET, "E2E_SECRET_KEY": SECRET_KEY}


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[OAuthStack]:
    monkeypatch.setenv("E2E_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    lifetime = getattr(request, "param", 3600)
    stack = start_oauth_stack(tmp_path, CLIENT_SECRET, token_lifetime=lifetime, clock=FakeClock())
    yield stack
    stack.stop()


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_sign_in_then_tools_list_and_call(stack: OAuthStack, mode: str) -> None:
    url = f"{stack.proxy.url}/mcp/items"
    storage, browser = MemoryStorage(), Browser()
    async with mcp_session(url, storage, browser, mode) as client:
        tools = await client.list_tools()
        assert {tool.name for tool in tools.tools} == {"listItems", "getItem", "createItem"}
        result = await client.call_tool("listItems", {})
        assert not result.is_error, result
    assert browser.sign_ins == 1 and browser.consent_pages == 1
    assert any("/auth/authorize" in page for page in browser.visited)  # the upstream's own sign-in was used
    assert storage.tokens is not None
    castproxy_token = storage.tokens.access_token
    assert castproxy_token.startswith("cpat_")
    # The upstream saw only its own access tokens, never castproxy's.
    assert stack.recorder.seen
    assert all(header.startswith("Bearer ") for header in stack.recorder.seen)
    assert all(castproxy_token not in header and "cpat_" not in header for header in stack.recorder.seen)

    # A new session with the stored tokens works without any browser step.
    async with mcp_session(url, storage, browser, mode) as client:
        assert not (await client.call_tool("listItems", {})).is_error
    assert browser.sign_ins == 1
    await browser.aclose()


async def test_second_sign_in_in_the_same_browser_skips_consent(stack: OAuthStack) -> None:
    url = f"{stack.proxy.url}/mcp/items"
    browser = Browser()
    for _ in range(2):  # two MCP clients (each registers itself), one browser
        async with mcp_session(url, MemoryStorage(), browser, "legacy") as client:
            assert not (await client.call_tool("listItems", {})).is_error
    assert browser.sign_ins == 2
    assert browser.consent_pages == 2  # a different client_id: consent is per client
    storage = MemoryStorage()
    async with mcp_session(url, storage, browser, "legacy") as client:
        await client.list_tools()
    storage.tokens = None  # the same client signs in again: consent remembered, no page
    async with mcp_session(url, storage, browser, "legacy") as client:
        await client.list_tools()
    assert browser.sign_ins == 4 and browser.consent_pages == 3
    await browser.aclose()


async def test_token_for_one_workspace_is_refused_on_another(stack: OAuthStack) -> None:
    storage, browser = MemoryStorage(), Browser()
    async with mcp_session(f"{stack.proxy.url}/mcp/items", storage, browser, "legacy") as client:
        assert not (await client.call_tool("listItems", {})).is_error
    assert storage.tokens is not None
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{stack.proxy.url}/mcp/users",
            headers={"Authorization": f"Bearer {storage.tokens.access_token}", "Accept": "application/json"},
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        )
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert "issued for another workspace" in response.headers["www-authenticate"]
        # An upstream token is no castproxy token either.
        upstream_token = stack.recorder.seen[-1].split(" ", 1)[1]
        response = await http.post(
            f"{stack.proxy.url}/mcp/items",
            headers={"Authorization": f"Bearer {upstream_token}", "Accept": "application/json"},
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        )
        assert response.status_code == 401
    await browser.aclose()


async def test_restart_keeps_the_sign_in(stack: OAuthStack) -> None:
    url = f"{stack.proxy.url}/mcp/items"
    storage, browser = MemoryStorage(), Browser()
    async with mcp_session(url, storage, browser, "legacy") as client:
        assert not (await client.call_tool("listItems", {})).is_error
    stack.restart_proxy()
    async with mcp_session(url, storage, browser, "legacy") as client:
        assert not (await client.call_tool("listItems", {})).is_error
    assert browser.sign_ins == 1
    await browser.aclose()


@pytest.mark.parametrize("stack", [2], indirect=True)  # upstream access tokens live 2 s of the fake clock
async def test_revoked_upstream_grant_makes_the_client_sign_in_again(stack: OAuthStack) -> None:
    url = f"{stack.proxy.url}/mcp/items"
    storage, browser = MemoryStorage(), Browser()
    async with mcp_session(url, storage, browser, "legacy") as client:
        assert not (await client.call_tool("listItems", {})).is_error
        oauth = stack.upstream_app.state.oauth  # type: ignore[attr-defined]
        oauth.revoke_all()  # the upstream grant is gone: the next refresh answers invalid_grant
        stack.clock.advance(2.1)
        failed = await client.call_tool("listItems", {})
        assert failed.is_error
        assert "Sign-in required" in failed.content[0].text  # type: ignore[union-attr]
    assert browser.sign_ins == 1
    # The castproxy token is now refused, so the SDK signs in again (consent remembered) and succeeds.
    async with mcp_session(url, storage, browser, "legacy") as client:
        assert not (await client.call_tool("listItems", {})).is_error
    assert browser.sign_ins == 2 and browser.consent_pages == 1
    await browser.aclose()


@pytest.mark.parametrize("stack", [2], indirect=True)  # upstream access tokens live 2 s of the fake clock
async def test_concurrent_calls_after_expiry_refresh_once(stack: OAuthStack) -> None:
    url = f"{stack.proxy.url}/mcp/items"
    storage, browser = MemoryStorage(), Browser()
    async with mcp_session(url, storage, browser, "legacy") as client:
        assert not (await client.call_tool("listItems", {})).is_error
    assert storage.tokens is not None
    stack.clock.advance(2.1)
    before = stack.recorder.refreshes
    started = time.monotonic()
    responses = await call_concurrently([url], storage.tokens.access_token, 20)
    elapsed = time.monotonic() - started
    for response in responses:
        assert response.status_code == 200, response.text
        assert response.json()["result"]["isError"] is False, response.text
    assert stack.recorder.refreshes - before == 1, f"20 calls took {elapsed:.2f} s"
    await browser.aclose()


async def test_two_proxies_sharing_redis_refresh_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_redis()
    monkeypatch.setenv("E2E_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    sockets = [free_socket(), free_socket()]
    urls = [f"http://127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    clock = FakeClock()
    upstream = start_oauth_upstream(urls, CLIENT_SECRET, token_lifetime=2, clock=clock)
    recorder = upstream.recorder
    store = "{backend: redis, url: redis://127.0.0.1:6379/0}"
    proxies = [
        run(
            create_app(write_config(tmp_path, url, upstream.url, name=f"cast{i}.yaml", store=store), reload=False,
                       clock=clock),
            sock,
        )
        for i, (url, sock) in enumerate(zip(urls, sockets, strict=True))
    ]
    try:
        storage, browser = MemoryStorage(), Browser()
        async with mcp_session(f"{urls[0]}/mcp/items", storage, browser, "legacy") as client:
            assert not (await client.call_tool("listItems", {})).is_error
        assert storage.tokens is not None
        # The token issued by the first replica works on the second one too.
        async with mcp_session(f"{urls[1]}/mcp/items", storage, browser, "legacy") as client:
            assert not (await client.call_tool("listItems", {})).is_error
        assert browser.sign_ins == 1
        clock.advance(2.1)
        before = recorder.refreshes
        started = time.monotonic()
        responses = await call_concurrently([f"{url}/mcp/items" for url in urls], storage.tokens.access_token, 20)
        elapsed = time.monotonic() - started
        for response in responses:
            assert response.status_code == 200, response.text
            assert response.json()["result"]["isError"] is False, response.text
        assert recorder.refreshes - before == 1, f"20 calls took {elapsed:.2f} s"
        await browser.aclose()
    finally:
        for proxy in proxies:
            proxy.stop()
        upstream.stop()


# A wrong secret key after a restart: tests/e2e/test_oauth_wrong_key.py (it fails closed, keeping the sign-in).


async def test_secrets_never_reach_logs_or_results(stack: OAuthStack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    url = f"{stack.proxy.url}/mcp/items"
    storage, browser = MemoryStorage(), Browser()
    results = []
    async with mcp_session(url, storage, browser, "legacy") as client:
        results.append((await client.call_tool("listItems", {})).model_dump_json())
        results.append((await client.call_tool("getItem", {"id": 99999})).model_dump_json())
    assert storage.tokens is not None
    upstream_tokens = {header.split(" ", 1)[1] for header in stack.recorder.seen}
    secrets = {CLIENT_SECRET, SECRET_KEY, storage.tokens.access_token, storage.tokens.refresh_token, *upstream_tokens}
    logged = caplog.text
    assert "upstream sign-in complete" in logged  # the proxy's logs were captured
    for secret in secrets:
        assert secret not in logged
        assert all(secret not in result for result in results)
    await browser.aclose()


@pytest.mark.slow
async def test_castproxy_serve_restart_keeps_the_sign_in(tmp_path: Path) -> None:
    port = free_port()
    proxy_url = f"http://127.0.0.1:{port}"
    upstream = start_oauth_upstream([proxy_url], CLIENT_SECRET)
    recorder = upstream.recorder
    config = write_config(tmp_path, proxy_url, upstream.url)
    storage, browser = MemoryStorage(), Browser()
    logs = ""
    try:
        process, _ = start_serve(config, SERVE_ENV, port)
        try:
            async with mcp_session(f"{proxy_url}/mcp/items", storage, browser, "2026-07-28") as client:
                assert not (await client.call_tool("listItems", {})).is_error
        finally:
            logs += stop_serve(process)
        process, _ = start_serve(config, SERVE_ENV, port)
        try:
            async with mcp_session(f"{proxy_url}/mcp/items", storage, browser, "2026-07-28") as client:
                assert not (await client.call_tool("listItems", {})).is_error
        finally:
            logs += stop_serve(process)
    finally:
        upstream.stop()
        await browser.aclose()
    assert browser.sign_ins == 1
    assert storage.tokens is not None
    assert "upstream sign-in complete" in logs  # the process's log lines were read
    for secret in (CLIENT_SECRET, SECRET_KEY, storage.tokens.access_token, storage.tokens.refresh_token):
        assert secret not in logs
    assert all(header.split(" ", 1)[1] not in logs for header in recorder.seen)


async def test_restart_keeps_the_sign_in_on_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Redis store holds grants and castproxy tokens: a new proxy process on the same Redis serves the client."""
    require_redis()
    monkeypatch.setenv("E2E_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    stack = start_oauth_stack(tmp_path, CLIENT_SECRET, store="{backend: redis, url: redis://127.0.0.1:6379/0}")
    try:
        url = f"{stack.proxy.url}/mcp/items"
        storage, browser = MemoryStorage(), Browser()
        async with mcp_session(url, storage, browser, "legacy") as client:
            assert not (await client.call_tool("listItems", {})).is_error
        stack.restart_proxy()
        async with mcp_session(url, storage, browser, "legacy") as client:
            assert not (await client.call_tool("listItems", {})).is_error
        assert browser.sign_ins == 1
        await browser.aclose()
    finally:
        stack.stop()


async def test_rotated_secret_key_keeps_the_sign_in_through_previous_secret_keys(
    stack: OAuthStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new secret_key with the old one under previous_secret_keys: stored grants still decrypt."""
    url = f"{stack.proxy.url}/mcp/items"
    storage, browser = MemoryStorage(), Browser()
    async with mcp_session(url, storage, browser, "legacy") as client:
        assert not (await client.call_tool("listItems", {})).is_error
    monkeypatch.setenv("E2E_OLD_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("E2E_SECRET_KEY", "a-different-secret-key-0123456789abcdef")
    text = stack.config.read_text()
    stack.config.write_text(
        text.replace("  secret_key: ${env:E2E_SECRET_KEY}\n",
                     "  secret_key: ${env:E2E_SECRET_KEY}\n  previous_secret_keys: ['${env:E2E_OLD_SECRET_KEY}']\n")
    )
    assert "previous_secret_keys" in stack.config.read_text()
    stack.restart_proxy()
    async with mcp_session(url, storage, browser, "legacy") as client:
        assert not (await client.call_tool("listItems", {})).is_error
    assert browser.sign_ins == 1
    await browser.aclose()
