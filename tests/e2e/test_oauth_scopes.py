"""Issue 11, finding 1 end to end: a client that signed in for the read scope cannot write, because castproxy's
upstream sign-in asked the upstream for that scope only (the upstream grant holds just that scope), and,
since issue 14, castproxy itself refuses the calls of tools whose OpenAPI `security` scopes the token lacks.

The same check against a third-party upstream (Django + django-oauth-toolkit) is in test_oauth_django_upstream.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from oauth_e2e_support import SECRET_KEY, OAuthStack, start_oauth_stack
from support.oauth_client import Browser, MemoryStorage, mcp_session, sign_in_with_scope

CLIENT_SECRET = "e2e-upstream-client-secret-scopes-0123456789"

SCOPED = """  scoped:
    openapi: {upstream}/openapi.json
    base_url: {upstream}
    auth:
      type: oauth2
      authorization_url: {upstream}/auth/authorize
      token_url: {upstream}/auth/token
      client_id: test-client-id
      client_secret: ${{env:E2E_CLIENT_SECRET}}
      scopes: [read:items, write:items]
    tools: [listItems, createItem, deleteItem, getCurrentUser]
"""


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OAuthStack]:
    monkeypatch.setenv("E2E_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    stack = start_oauth_stack(tmp_path, CLIENT_SECRET, more_workspaces=SCOPED)
    yield stack
    stack.stop()


def _text(result: object) -> str:
    return "".join(getattr(part, "text", "") for part in getattr(result, "content", []))


async def _assert_read_only(stack: OAuthStack, storage: MemoryStorage) -> None:
    """The upstream grant holds the read scope only, and castproxy (issue 14) neither lists the writing tools nor
    sends their calls: it answers 403 insufficient_scope before MCP, so a client can step up (test_step_up.py)."""
    import httpx2

    url = f"{stack.proxy.url}/mcp/scoped"
    async with mcp_session(url, storage, Browser()) as client:
        me = await client.call_tool("getCurrentUser", {})
        assert not me.is_error, _text(me)
        assert me.structured_content is not None
        assert me.structured_content["scopes"] == ["read:items"]  # what the upstream itself granted
        assert not (await client.call_tool("listItems", {})).is_error
        assert {tool.name for tool in (await client.list_tools()).tools} == {"listItems", "getCurrentUser"}
    assert storage.tokens is not None
    headers = {"Authorization": f"Bearer {storage.tokens.access_token}", "MCP-Protocol-Version": "2025-11-25",
               "Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(timeout=15) as http:
        for name, arguments in (("createItem", {"name": "should not exist"}), ("deleteItem", {"id": 1})):
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
            refused = await http.post(url, json=body, headers=headers)
            assert refused.status_code == 403
            assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert all(item["name"] != "should not exist" for item in stack.upstream_app.state.data.items.values())
    assert 1 in stack.upstream_app.state.data.items


async def test_a_read_only_client_cannot_create_or_delete(stack: OAuthStack) -> None:
    storage = await sign_in_with_scope(stack.proxy.url, "scoped", "read:items")
    assert storage.tokens is not None and storage.tokens.scope == "read:items"
    await _assert_read_only(stack, storage)


async def test_a_client_asking_for_everything_can_write(stack: OAuthStack) -> None:
    """The control: the same workspace and calls with both scopes succeed, so the refusals above are the scope's."""
    storage = await sign_in_with_scope(stack.proxy.url, "scoped", None)
    assert storage.tokens is not None and storage.tokens.scope == "read:items write:items"
    async with mcp_session(f"{stack.proxy.url}/mcp/scoped", storage, Browser()) as client:
        created = await client.call_tool("createItem", {"name": "written"})
        assert not created.is_error, _text(created)


async def test_a_refresh_narrowed_to_read_cannot_write(stack: OAuthStack) -> None:
    import httpx2

    storage = await sign_in_with_scope(stack.proxy.url, "scoped", None)
    assert storage.tokens is not None and storage.client_info is not None
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            f"{stack.proxy.url}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": storage.tokens.refresh_token,
                "client_id": storage.client_info.client_id,
                "scope": "read:items",
            },
        )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "read:items"
    narrowed = MemoryStorage()
    narrowed.client_info = storage.client_info
    narrowed.tokens = type(storage.tokens).model_validate(response.json())
    await _assert_read_only(stack, narrowed)
