"""End-to-end OAuth parts: the bundled test upstream in mode `oauth` behind a recorder, the cast.yaml of
two per-user OAuth workspaces on it, castproxy serving them, and many tools/call requests at once.

The browser stand-in and token storage for the `mcp` SDK client are in support.oauth_client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from support import web
from support.net import free_socket
from support.recording import RecordedUpstream, UpstreamRecorder, start_recorded
from support.servers import Running, run

from castproxy.serve.app import create_app

SECRET_KEY = "e2e-secret-key-0123456789abcdef-0123456789"


def start_oauth_upstream(proxy_urls: list[str], client_secret: str, **options: Any) -> RecordedUpstream:
    """The test server in mode `oauth` (auto-approving), accepting each proxy's callback, behind a recorder."""
    redirect_uris = [f"{url}/oauth/callback" for url in proxy_urls]
    return start_recorded("oauth", client_secret, auto_approve=True, redirect_uris=redirect_uris, **options)


def write_config(
    folder: Path, proxy_url: str, upstream: str, *, name: str = "cast.yaml", store: str = "path: state.db"
) -> Path:
    auth = f"""    auth:
      type: oauth2
      provider: custom
      grant: authorization_code
      authorization_url: {upstream}/auth/authorize
      token_url: {upstream}/auth/token
      client_id: test-client-id
      client_secret: ${{env:E2E_CLIENT_SECRET}}
      scopes: [read:items, write:items, read:users]
"""
    port = proxy_url.rsplit(":", 1)[1]
    path = folder / name
    path.write_text(
        f"""version: 1
server:
  public_url: {proxy_url}
  host: 127.0.0.1
  port: {port}
  secret_key: ${{env:E2E_SECRET_KEY}}
store:
  {store}
workspaces:
  items:
    openapi: {upstream}/openapi.json
    base_url: {upstream}
{auth}    tools: [listItems, getItem, createItem]
  users:
    openapi: {upstream}/openapi.json
    base_url: {upstream}
{auth}    tools: [listUsers]
"""
    )
    return path


@dataclass
class OAuthStack:
    """castproxy in-process on loopback, in front of the recorded test upstream, from one cast.yaml."""

    proxy: Running
    upstream: RecordedUpstream
    config: Path
    clock: Any = time.time  # shared by the proxy and the upstream: a FakeClock where tests advance it

    @property
    def recorder(self) -> UpstreamRecorder:
        return self.upstream.recorder

    @property
    def upstream_app(self) -> Any:
        return self.upstream.app

    @property
    def oauth(self) -> Any:
        return self.upstream.oauth

    def last_upstream_token(self) -> str:
        return self.upstream.last_token()

    async def revoke_access_token(self, token: str) -> None:
        """What an upstream admin (or a key rotation) does: this access token is dead, the grant lives on."""
        await self.upstream.revoke(token)

    def restart_proxy(self) -> None:
        """Stop the proxy and start a new one on the same port, config and state file."""
        port = int(self.proxy.url.rsplit(":", 1)[1])
        self.proxy.stop()
        self.proxy = run(create_app(self.config, reload=False, clock=self.clock), free_socket(port))

    def stop(self) -> None:
        self.proxy.stop()
        self.upstream.stop()


def start_oauth_stack(
    folder: Path, client_secret: str, *, store: str = "path: state.db", more_workspaces: str = "",
    clock: Callable[[], float] = time.time, **options: Any
) -> OAuthStack:
    """write_config's two workspaces (plus `more_workspaces`, with {upstream} filled in) served by castproxy;
    `options` go to the test server; `clock` to both. Needs E2E_CLIENT_SECRET and E2E_SECRET_KEY in the environment."""
    proxy_socket = free_socket()
    proxy_url = f"http://127.0.0.1:{proxy_socket.getsockname()[1]}"
    upstream = start_oauth_upstream([proxy_url], client_secret, clock=clock, **options)
    config = write_config(folder, proxy_url, upstream.url, store=store)
    config.write_text(config.read_text() + more_workspaces.format(upstream=upstream.url))
    proxy = run(create_app(config, reload=False, clock=clock), proxy_socket)
    return OAuthStack(proxy, upstream, config, clock)


async def call_concurrently(urls: list[str], token: str, count: int) -> list[httpx2.Response]:
    """`count` tools/call requests at once, spread over `urls`, each with the castproxy access token."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
    }
    async with httpx2.AsyncClient(timeout=30, limits=httpx2.Limits(max_connections=count), verify=web.TLS) as http:

        async def one(index: int) -> httpx2.Response:
            body = {
                "jsonrpc": "2.0",
                "id": index,
                "method": "tools/call",
                "params": {"name": "listItems", "arguments": {}},
            }
            return await http.post(urls[index % len(urls)], headers=headers, json=body)

        return list(await asyncio.gather(*(one(index) for index in range(count))))
