"""Issue 11, finding 1 against a third-party upstream: Django + django-oauth-toolkit + Django REST framework.

castproxy serves the Django app's OpenAPI document (drf-spectacular) as a workspace whose users sign in at
django-oauth-toolkit (PKCE required). A client that signed in for `read` gets an upstream token with
`read` only, so the upstream itself refuses its writing calls; a client with both scopes may write.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.django_upstream import DjangoUpstream, start_django_upstream
from support.net import free_socket
from support.oauth_client import Browser, mcp_session, sign_in_with_scope
from support.servers import Running, run

from castproxy.serve.app import create_app

SECRET_KEY = "django-e2e-secret-key-0123456789abcdef-0123"


@dataclass
class Stack:
    proxy: Running
    upstream: DjangoUpstream

    @property
    def mcp_url(self) -> str:
        return f"{self.proxy.url}/mcp/django"


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    sock = free_socket()
    proxy_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    upstream = start_django_upstream([f"{proxy_url}/oauth/callback"])
    monkeypatch.setenv("DJANGO_E2E_CLIENT_SECRET", upstream.client_secret)
    monkeypatch.setenv("DJANGO_E2E_SECRET_KEY", SECRET_KEY)
    config = tmp_path / "cast.yaml"
    config.write_text(
        f"""version: 1
server:
  public_url: {proxy_url}
  secret_key: ${{env:DJANGO_E2E_SECRET_KEY}}
store:
  path: state.db
workspaces:
  django:
    openapi: {upstream.openapi_url}
    base_url: {upstream.url}
    auth:
      type: oauth2
      authorization_url: {upstream.authorization_url}
      token_url: {upstream.token_url}
      revocation_url: {upstream.revocation_url}
      client_id: {upstream.client_id}
      client_secret: ${{env:DJANGO_E2E_CLIENT_SECRET}}
      scopes: [read, write]
    tools: [listItems, createItem, deleteItem, getCurrentUser]
"""
    )
    proxy = run(create_app(config, reload=False), sock)
    yield Stack(proxy, upstream)
    proxy.stop()
    upstream.stop()


def _text(result: object) -> str:
    return "".join(getattr(part, "text", "") for part in getattr(result, "content", []))


async def test_a_read_only_client_cannot_call_a_writing_tool(stack: Stack) -> None:
    storage = await sign_in_with_scope(stack.proxy.url, "django", "read")
    assert storage.tokens is not None and storage.tokens.scope == "read"
    async with mcp_session(stack.mcp_url, storage, Browser()) as client:
        me = await client.call_tool("getCurrentUser", {})
        assert not me.is_error, _text(me)
        assert me.structured_content == {"user": "alice", "scopes": ["read"]}  # the upstream's own view
        listed = await client.call_tool("listItems", {})
        assert not listed.is_error, _text(listed)
    # Since issue 14 castproxy reads the spec's scopes and answers a writing call 403 insufficient_scope before
    # the upstream (an MCP client would step up there); the upstream grant itself holds only `read`.
    import httpx2

    assert storage.tokens is not None
    headers = {"Authorization": f"Bearer {storage.tokens.access_token}", "MCP-Protocol-Version": "2025-11-25",
               "Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(timeout=15) as http:
        for name, arguments in (("createItem", {"name": "not allowed"}), ("deleteItem", {"item_id": 1})):
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
            refused = await http.post(stack.mcp_url, json=body, headers=headers)
            assert refused.status_code == 403, refused.text
            assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert sorted(item["name"] for item in stack.upstream.items().values()) == ["Gadget", "Widget"]
    assert stack.upstream.access_token_scopes() == [["read"]]


async def test_a_client_with_both_scopes_can_write(stack: Stack) -> None:
    storage = await sign_in_with_scope(stack.proxy.url, "django", None)
    assert storage.tokens is not None and storage.tokens.scope == "read write"
    async with mcp_session(stack.mcp_url, storage, Browser()) as client:
        created = await client.call_tool("createItem", {"name": "allowed"})
        assert not created.is_error, _text(created)
        deleted = await client.call_tool("deleteItem", {"item_id": 1})
        assert not deleted.is_error, _text(deleted)
    assert sorted(item["name"] for item in stack.upstream.items().values()) == ["Gadget", "allowed"]
