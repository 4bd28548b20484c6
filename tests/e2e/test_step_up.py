"""Operation scopes and step-up end to end (MCP authorization 2025-11-25, scope challenge): the bundled test
server's OpenAPI gives createItem `security: [{oauth2: [write:items]}]`; a client signed in for read:items
does not see it, a call is answered 403 insufficient_scope with the scopes to ask for, and the `mcp` SDK
client then authorizes again (castproxy renews the upstream sign-in with the larger scope) and the call works.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from oauth_e2e_support import SECRET_KEY, OAuthStack, start_oauth_stack
from support.oauth_client import Browser, mcp_session, sign_in_with_scope

CLIENT_SECRET = "e2e-upstream-client-secret-step-up-0123456789"


@pytest.fixture(params=["on", "off"], ids=["fast-path", "sdk-path"])
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[OAuthStack]:
    monkeypatch.setenv("E2E_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("CASTPROXY_FAST_PATH", request.param)
    stack = start_oauth_stack(tmp_path, CLIENT_SECRET)
    yield stack
    stack.stop()


def _text(result: object) -> str:
    return "".join(getattr(part, "text", "") for part in getattr(result, "content", []))


async def test_a_missing_scope_is_challenged_and_works_after_step_up(stack: OAuthStack) -> None:
    url = f"{stack.proxy.url}/mcp/items"
    storage = await sign_in_with_scope(stack.proxy.url, "items", "read:items")
    assert storage.tokens is not None and storage.tokens.scope == "read:items"

    headers = {"Authorization": f"Bearer {storage.tokens.access_token}", "MCP-Protocol-Version": "2025-11-25",
               "Accept": "application/json, text/event-stream"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "createItem", "arguments": {"name": "after step-up"}}}
    async with httpx2.AsyncClient(timeout=15) as http:
        refused = await http.post(url, json=body, headers=headers)
    assert refused.status_code == 403
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and 'error="insufficient_scope"' in challenge
    assert 'scope="read:items write:items"' in challenge  # what it holds plus what the tool needs
    assert f'resource_metadata="{stack.proxy.url}/.well-known/oauth-protected-resource/mcp/items"' in challenge
    assert not stack.recorder.sent or all(sent.method != "POST" for sent in stack.recorder.sent)

    browser = Browser()
    try:
        async with mcp_session(url, storage, browser) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert names == {"listItems", "getItem"}  # createItem needs write:items, which this token lacks
            created = await client.call_tool("createItem", {"name": "after step-up"})  # 403 -> step-up -> retry
            assert not created.is_error, _text(created)
            assert {tool.name for tool in (await client.list_tools()).tools} == {"listItems", "getItem", "createItem"}
    finally:
        await browser.aclose()
    assert browser.sign_ins == 1 and browser.consent_pages == 1  # one new sign-in, for the larger scope
    assert storage.tokens is not None and set(storage.tokens.scope.split()) == {"read:items", "write:items"}
    assert any(item["name"] == "after step-up" for item in stack.upstream_app.state.data.items.values())
    # The upstream sign-in was renewed with the larger scope: the upstream itself granted write:items.
    assert any("write:items" in token.scopes for token in stack.oauth._access.values())
