"""The upstream revokes a token before it expires: real servers on loopback, the `mcp` SDK client signed in.

The bundled test server revokes one access token through its RFC 7009 endpoint (its refresh token
stays valid: castproxy refreshes once and the call succeeds), or the whole grant (`revoke_all`:
the call says the sign-in ended, the castproxy token is refused with a 401 challenge, and the
SDK client signs in again). A `grant: client_credentials` workspace re-fetches its service token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from oauth_e2e_support import SECRET_KEY, OAuthStack, call_concurrently, start_oauth_stack
from support.oauth_client import Browser, MemoryStorage, mcp_session

CLIENT_SECRET = "e2e-revoked-client-secret-0123456789"

SERVICE_WORKSPACE = """  service:
    openapi: {upstream}/openapi.json
    base_url: {upstream}
    auth:
      type: oauth2
      grant: client_credentials
      token_url: {upstream}/auth/token
      client_id: test-client-id
      client_secret: ${{env:E2E_CLIENT_SECRET}}
      scopes: [read:items]
    tools: [listItems, createItem]
"""


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OAuthStack]:
    monkeypatch.setenv("E2E_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    stack = start_oauth_stack(tmp_path, CLIENT_SECRET, more_workspaces=SERVICE_WORKSPACE)
    yield stack
    stack.stop()


def text(result: Any) -> str:
    return " ".join(getattr(part, "text", "") for part in result.content)


async def test_revoked_access_token_is_refreshed_and_the_call_succeeds(
    stack: OAuthStack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    url = f"{stack.proxy.url}/mcp/items"
    storage, browser = MemoryStorage(), Browser()
    async with mcp_session(url, storage, browser) as client:
        assert not (await client.call_tool("listItems", {})).is_error
        refused = stack.last_upstream_token()
        await stack.revoke_access_token(refused)

        result = await client.call_tool("listItems", {})
        assert not result.is_error, text(result)
        assert stack.recorder.refreshes == 1
        renewed = stack.last_upstream_token()
        assert renewed != refused
        assert stack.recorder.seen[-2:] == [f"Bearer {refused}", f"Bearer {renewed}"]  # refused, then re-sent

        # The new token serves the next calls without any further refresh.
        assert not (await client.call_tool("listItems", {})).is_error
        assert stack.recorder.seen[-1] == f"Bearer {renewed}" and stack.recorder.refreshes == 1
    assert browser.sign_ins == 1  # the user never had to sign in again
    assert "refused the access token" in caplog.text  # the proxy's log says what happened...
    for secret in (refused, renewed, CLIENT_SECRET, storage.tokens.access_token if storage.tokens else "-"):
        assert secret not in caplog.text  # ...without a token or secret in it
    await browser.aclose()


async def test_revoked_access_token_with_a_post_sends_the_same_request_again(stack: OAuthStack) -> None:
    url = f"{stack.proxy.url}/mcp/items"
    storage, browser = MemoryStorage(), Browser()
    async with mcp_session(url, storage, browser) as client:
        assert not (await client.call_tool("listItems", {})).is_error
        await stack.revoke_access_token(stack.last_upstream_token())
        items_before = len(stack.upstream_app.state.data.items)
        created = await client.call_tool("createItem", {"name": "lamp", "price": 3})
        assert not created.is_error, text(created)
        assert created.structured_content is not None and created.structured_content["name"] == "lamp"
        assert len(stack.upstream_app.state.data.items) == items_before + 1  # the refused POST did nothing
        assert stack.recorder.refreshes == 1
    await browser.aclose()


async def test_twenty_concurrent_calls_after_a_revocation_refresh_once(stack: OAuthStack) -> None:
    url = f"{stack.proxy.url}/mcp/items"
    storage, browser = MemoryStorage(), Browser()
    async with mcp_session(url, storage, browser) as client:
        assert not (await client.call_tool("listItems", {})).is_error
    assert storage.tokens is not None
    await stack.revoke_access_token(stack.last_upstream_token())

    responses = await call_concurrently([url], storage.tokens.access_token, 20)
    for response in responses:
        assert response.status_code == 200, response.text
        assert response.json()["result"]["isError"] is False, response.text
    assert stack.recorder.refreshes == 1
    await browser.aclose()


async def test_revoked_grant_ends_the_sign_in_and_the_client_signs_in_again(stack: OAuthStack) -> None:
    url = f"{stack.proxy.url}/mcp/items"
    storage, browser = MemoryStorage(), Browser()
    async with mcp_session(url, storage, browser) as client:
        assert not (await client.call_tool("listItems", {})).is_error
        stack.oauth.revoke_all()  # access and refresh token: the grant is gone, an hour before expiry

        failed = await client.call_tool("listItems", {})
        assert failed.is_error
        assert text(failed).startswith("Sign-in required: the upstream grant of workspace items is no longer valid.")
        assert "reconnect" in text(failed)
    assert stack.recorder.refreshes == 1  # tried once, refused with invalid_grant
    assert storage.tokens is not None

    # The castproxy token bound to the dead grant is refused with the challenge that starts a sign-in.
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            url,
            headers={
                "Authorization": f"Bearer {storage.tokens.access_token}",
                "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": "2025-11-25",
            },
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        )
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert f'resource_metadata="{stack.proxy.url}/.well-known/oauth-protected-resource/mcp/items"' in challenge

    # The SDK client follows it: signs in again (consent remembered) and works.
    async with mcp_session(url, storage, browser) as client:
        assert not (await client.call_tool("listItems", {})).is_error
    assert browser.sign_ins == 2 and browser.consent_pages == 1
    await browser.aclose()


async def test_service_token_revoked_is_fetched_again_once(stack: OAuthStack) -> None:
    url = f"{stack.proxy.url}/mcp/service"
    async with Client(streamable_http_client(url), mode="legacy", cache=None) as client:
        assert not (await client.call_tool("listItems", {})).is_error
        assert stack.recorder.service_fetches == 1
        refused = stack.last_upstream_token()
        await stack.revoke_access_token(refused)

        results = [await client.call_tool("listItems", {}) for _ in range(3)]
        assert all(not result.is_error for result in results), [text(result) for result in results]
        assert stack.recorder.service_fetches == 2
        assert stack.last_upstream_token() != refused


async def test_403_is_answered_as_is_without_renewal(stack: OAuthStack) -> None:
    url = f"{stack.proxy.url}/mcp/service"
    async with Client(streamable_http_client(url), mode="legacy", cache=None) as client:
        result = await client.call_tool("createItem", {"name": "lamp"})  # the service has only read:items
        assert result.is_error
        assert text(result).startswith("Upstream answered 403") and "insufficient_scope" in text(result)
    assert len(stack.recorder.seen) == 1  # sent once, never again
    assert stack.recorder.service_fetches == 1
