"""`auth.type: login` end to end: the bundled test server in mode `jwt`, castproxy in front, the `mcp` SDK client.

Real servers on loopback throughout. The test server and castproxy share one FakeClock, so "after
expiry" is a clock step, not a sleep. What the test server counts (logins, refreshes) is the proof:
one login on first use, one refresh after expiry however many calls wait (also across two proxies on
one Redis), a new login when the session is revoked, and no secret in any output when the
credentials are wrong (that one runs `castproxy serve` as a process and searches its log).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from support.clock import FakeClock
from support.net import free_socket
from support.recording import UpstreamRecorder
from support.redis import drop_prefix, require_redis
from support.serve_process import start_serve, stop_serve
from support.servers import Running, run

from castproxy.serve.app import create_app
from castproxy.testserver.app import create_app as create_testserver

SECRET_KEY = "e2e-login-secret-key-0123456789abcdef-0123"
PASSWORD = "pw-e2e-login-correct-7f3a1c"
LIFETIME = 120


def config_text(port: int, upstream: str, *, workspace: str = "items", store: str = "path: state.db",
                refresh: bool = True, inbound: bool = False) -> str:
    refresh_line = f"      refresh_url: {upstream}/auth/refresh\n" if refresh else ""
    inbound_lines = "    inbound:\n      api_keys: [\"${env:E2E_MCP_KEY}\"]\n" if inbound else ""
    return f"""version: 1
server:
  host: 127.0.0.1
  port: {port}
  secret_key: ${{env:E2E_SECRET_KEY}}
store:
  {store}
workspaces:
  {workspace}:
    openapi: {upstream}/openapi.json
    base_url: {upstream}
    auth:
      type: login
      login_url: {upstream}/auth/login
      credentials:
        username: ${{env:E2E_API_USER}}
        password: ${{env:E2E_API_PASSWORD}}
{refresh_line}{inbound_lines}    tools: [listItems, createItem, getCurrentUser]
"""


@dataclass
class Stack:
    proxies: list[Running]
    upstream: Running
    app: Any  # the test server's Starlette app (app.state.jwt counts and revokes)
    recorder: UpstreamRecorder
    clock: FakeClock
    workspace: str = "items"

    @property
    def jwt(self) -> Any:
        return self.app.state.jwt

    def url(self, index: int = 0) -> str:
        return f"{self.proxies[index].url}/mcp/{self.workspace}"

    def last_token(self) -> str:
        return self.recorder.seen[-1].split(" ", 1)[1]

    def stop(self) -> None:
        for proxy in self.proxies:
            proxy.stop()
        self.upstream.stop()


def start_stack(folder: Path, *, proxies: int = 1, store: str = "path: state.db", workspace: str = "items",
                refresh: bool = True, inbound: bool = False) -> Stack:
    clock = FakeClock()
    app = create_testserver("jwt", password=PASSWORD, token_lifetime=LIFETIME, clock=clock)
    recorder = UpstreamRecorder(app)
    upstream = run(recorder)
    running = []
    for index in range(proxies):
        sock = free_socket()
        config = folder / f"cast{index}.yaml"
        config.write_text(config_text(sock.getsockname()[1], upstream.url, workspace=workspace, store=store,
                                      refresh=refresh, inbound=inbound))
        running.append(run(create_app(config, reload=False, clock=clock), sock))
    return Stack(running, upstream, app, recorder, clock, workspace)


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("E2E_API_USER", "alice")
    monkeypatch.setenv("E2E_API_PASSWORD", PASSWORD)


@pytest.fixture
def stack(tmp_path: Path, credentials: None) -> Iterator[Stack]:
    stack = start_stack(tmp_path)
    yield stack
    stack.stop()


def text(result: Any) -> str:
    return " ".join(getattr(part, "text", "") for part in result.content)


async def call(url: str, tool: str = "listItems", arguments: dict[str, Any] | None = None) -> Any:
    async with Client(streamable_http_client(url), mode="legacy", cache=None) as client:
        return await client.call_tool(tool, arguments or {})


async def call_at_once(urls: list[str], count: int) -> list[dict[str, Any]]:
    """`count` stateless tools/call requests at the same time, spread over `urls`; their JSON-RPC results."""
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    async with httpx2.AsyncClient(timeout=30, limits=httpx2.Limits(max_connections=count)) as http:

        async def one(index: int) -> dict[str, Any]:
            body = {"jsonrpc": "2.0", "id": index, "method": "tools/call",
                    "params": {"name": "listItems", "arguments": {}}}
            response = await http.post(urls[index % len(urls)], headers=headers, json=body)
            assert response.status_code == 200, response.text
            return response.json()["result"]

        return list(await asyncio.gather(*(one(index) for index in range(count))))


async def test_first_call_logs_in_and_the_token_serves_the_next_calls(stack: Stack) -> None:
    me = await call(stack.url(), "getCurrentUser")
    assert not me.is_error, text(me)
    assert me.structured_content["auth"] == "jwt" and me.structured_content["user"]["name"] == "Alice Martin"
    assert stack.jwt.logins == {"ok": 1}
    token = stack.last_token()
    assert token.count(".") == 2  # the JWT itself, as Bearer

    for _ in range(3):
        assert not (await call(stack.url())).is_error
    assert stack.jwt.logins == {"ok": 1} and not stack.jwt.refreshes
    assert set(stack.recorder.seen) == {f"Bearer {token}"}


async def test_calls_after_expiry_refresh_and_do_not_log_in_again(stack: Stack) -> None:
    assert not (await call(stack.url())).is_error
    first = stack.last_token()
    stack.clock.advance(LIFETIME + 1)  # expired at the upstream and in castproxy's eyes

    result = await call(stack.url())
    assert not result.is_error, text(result)
    assert stack.jwt.refreshes == {"ok": 1} and stack.jwt.logins == {"ok": 1}
    assert stack.last_token() != first
    assert len(stack.recorder.sent) == 2  # renewed before the call: the expired token was never sent

    # Within the refresh margin (the last 10% of the lifetime) it is renewed ahead of expiry too.
    stack.clock.advance(LIFETIME * 0.95)
    assert not (await call(stack.url())).is_error
    assert stack.jwt.refreshes == {"ok": 2} and stack.jwt.logins == {"ok": 1}


async def test_a_revoked_session_leads_to_a_new_login_and_the_call_succeeds(stack: Stack) -> None:
    assert not (await call(stack.url())).is_error
    refused = stack.last_token()
    stack.jwt.revoke_all()  # access and refresh token dead, long before expiry

    result = await call(stack.url(), "createItem", {"name": "lamp", "price": 3})
    assert not result.is_error, text(result)
    assert result.structured_content["name"] == "lamp"
    renewed = stack.last_token()
    assert renewed != refused
    # Refused once with the old token, re-sent once with the new one; the refresh was tried and refused.
    assert [sent.authorization for sent in stack.recorder.sent[1:]] == [f"Bearer {refused}", f"Bearer {renewed}"]
    assert stack.jwt.refreshes == {"refused": 1} and stack.jwt.logins == {"ok": 2}
    assert sum(1 for item in stack.app.state.data.items.values() if item["name"] == "lamp") == 1


async def test_without_a_refresh_url_a_revoked_token_is_replaced_by_a_login(tmp_path: Path, credentials: None) -> None:
    stack = start_stack(tmp_path, refresh=False)
    try:
        assert not (await call(stack.url())).is_error
        stack.jwt.revoke_all()
        assert not (await call(stack.url())).is_error
        stack.clock.advance(LIFETIME + 1)
        assert not (await call(stack.url())).is_error
        assert stack.jwt.logins == {"ok": 3} and not stack.jwt.refreshes
    finally:
        stack.stop()


async def test_a_revoked_access_token_is_refreshed_without_a_new_login(stack: Stack) -> None:
    assert not (await call(stack.url())).is_error
    stack.jwt.revoke_access_token(stack.last_token())
    result = await call(stack.url())
    assert not result.is_error, text(result)
    assert stack.jwt.refreshes == {"ok": 1} and stack.jwt.logins == {"ok": 1}


async def test_twenty_concurrent_calls_log_in_once_and_after_expiry_refresh_once(stack: Stack) -> None:
    results = await call_at_once([stack.url()], 20)
    assert all(result["isError"] is False for result in results), results
    assert stack.jwt.logins == {"ok": 1}

    stack.clock.advance(LIFETIME + 1)
    results = await call_at_once([stack.url()], 20)
    assert all(result["isError"] is False for result in results), results
    assert stack.jwt.refreshes == {"ok": 1} and stack.jwt.logins == {"ok": 1}
    assert len(set(stack.recorder.seen)) == 2  # the first token, then the refreshed one: nothing else


async def test_two_proxies_on_one_redis_share_one_login_and_one_refresh(tmp_path: Path, credentials: None) -> None:
    require_redis()
    workspace = f"jwt-{secrets.token_hex(4)}"  # the shared Redis: keys of this test only
    stack = start_stack(tmp_path, proxies=2, workspace=workspace,
                        store="{backend: redis, url: redis://127.0.0.1:6379/0}")
    try:
        urls = [stack.url(0), stack.url(1)]
        results = await call_at_once(urls, 20)
        assert all(result["isError"] is False for result in results), results
        assert stack.jwt.logins == {"ok": 1}

        stack.clock.advance(LIFETIME + 1)
        results = await call_at_once(urls, 20)
        assert all(result["isError"] is False for result in results), results
        assert stack.jwt.refreshes == {"ok": 1} and stack.jwt.logins == {"ok": 1}
    finally:
        stack.stop()
        await drop_prefix(f"castproxy:upstream-login:{workspace}")


async def test_inbound_keys_guard_the_shared_login(tmp_path: Path, credentials: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2E_MCP_KEY", "mcp-key-for-the-login-workspace-0123")
    stack = start_stack(tmp_path, inbound=True)
    try:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "listItems", "arguments": {}}}
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
        async with httpx2.AsyncClient(timeout=30) as http:
            refused = await http.post(stack.url(), headers=headers, json=body)
            assert refused.status_code == 401 and "needs an API key" in refused.text
            assert not stack.jwt.logins  # nobody logged in on behalf of an unknown caller
            keyed = {**headers, "X-API-Key": "mcp-key-for-the-login-workspace-0123"}
            answer = await http.post(stack.url(), headers=keyed, json=body)
        assert answer.status_code == 200 and answer.json()["result"]["isError"] is False
        # The caller's key went no further than castproxy: the upstream saw the login's JWT only.
        assert stack.recorder.seen == [f"Bearer {stack.last_token()}"] and stack.jwt.logins == {"ok": 1}
    finally:
        stack.stop()


@pytest.mark.slow
async def test_wrong_credentials_give_a_clear_error_naming_the_workspace_and_no_secret(tmp_path: Path) -> None:
    wrong_password = "pw-CANARY-wrong-" + secrets.token_hex(6)
    username = "alice-CANARY-" + secrets.token_hex(4)
    secret_key = "CANARY-secret-key-" + secrets.token_hex(16)
    app = create_testserver("jwt", password=PASSWORD)
    upstream = run(app)
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    config = tmp_path / "cast.yaml"
    config.write_text(config_text(port, upstream.url))
    env = {"E2E_SECRET_KEY": secret_key, "E2E_API_USER": username, "E2E_API_PASSWORD": wrong_password}
    process, proxy_url = start_serve(config, env, port)
    outputs: list[str] = []
    try:
        for _ in range(2):
            result = await call(f"{proxy_url}/mcp/items")
            assert result.is_error
            outputs.append(result.model_dump_json())
        message = text(result)
        assert message == (
            "Tool 'listItems' cannot run: workspace items: the upstream login endpoint refused castproxy's "
            "credentials (HTTP 401 invalid_credentials); check the workspace's auth.credentials."
        )
        # The second call did not try again: refused credentials are not hammered (account lockouts).
        assert app.state.jwt.logins == {"refused": 1}
        async with httpx2.AsyncClient() as http:
            outputs.append((await http.get(f"{proxy_url}/metrics")).text)
            outputs.append((await http.get(f"{proxy_url}/readyz")).text)
    finally:
        outputs.append(stop_serve(process))
        upstream.stop()
    log = outputs[-1]
    assert "upstream login refused (HTTP 401 invalid_credentials)" in log  # the operator is told too
    everything = "\n".join(outputs)
    for canary in (wrong_password, username, secret_key, "CANARY"):
        assert canary not in everything
