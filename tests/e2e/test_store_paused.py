"""A paused Redis (SIGSTOP: connections stay open, nothing answers): every caller gets the same clear,
retryable error within the store bound, never the catch-all; after SIGCONT service resumes on its own.

The test runs its own redis-server on a free port (the shared one on 6379 is never paused), castproxy
on it with the bundled OAuth test upstream, and signs in with the `mcp` SDK client first.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import MappingProxyType

import httpx2
import pytest
from oauth_e2e_support import SECRET_KEY, OAuthStack, start_oauth_stack
from pydantic import SecretStr
from support.auth_server import bridge_credentials
from support.clock import FakeClock
from support.metrics import parse, value
from support.net import free_port
from support.oauth_client import Browser, MemoryStorage, mcp_session
from support.skips import skip_or_fail

from castproxy.auth.upstream_oauth import UpstreamOAuth
from castproxy.config.model import OAuth2Auth
from castproxy.observe import AuditTrail, Observer
from castproxy.openapi.compiler import compile_spec
from castproxy.serve.calls import ToolCaller
from castproxy.serve.snapshot import ToolRuntime, WorkspaceRuntime
from castproxy.store.crypto import Cipher
from castproxy.store.guard import RETRY_AFTER, STORE_TIMEOUT, GuardedStore
from castproxy.store.redis import RedisStore
from castproxy.testserver.document import openapi_document
from castproxy.upstream.arguments import ArgumentValidator
from castproxy.upstream.forwarder import Forwarder

pytestmark = pytest.mark.slow

CLIENT_SECRET = "e2e-upstream-client-secret-paused-0123"
# Well under redis-py's 10 s socket timeout, which is what callers waited before the bound.
WITHIN_BOUND = STORE_TIMEOUT + 3.0


class OwnRedis:
    """A redis-server of this test alone, on a free port, that can be paused and resumed."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        skip_or_fail("redis-server is not installed (apt-get install redis-server)")
    server = OwnRedis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def stack(tmp_path: Path, redis: OwnRedis, monkeypatch: pytest.MonkeyPatch) -> Iterator[OAuthStack]:
    monkeypatch.setenv("E2E_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    stack = start_oauth_stack(tmp_path, CLIENT_SECRET, store=f"{{backend: redis, url: '{redis.url}'}}",
                              clock=FakeClock())  # castproxy's guard counts its cool-off on it too
    yield stack
    stack.stop()


def _call(http: httpx2.AsyncClient, url: str, token: str) -> asyncio.Future[httpx2.Response]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "listItems", "arguments": {}}}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-11-25"}
    return asyncio.ensure_future(http.post(url, headers=headers, json=body))


async def test_a_paused_redis_gives_every_caller_a_retryable_503_then_service_resumes(
    stack: OAuthStack, redis: OwnRedis, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{stack.proxy.url}/mcp/items"
    storage, browser = MemoryStorage(), Browser()
    async with mcp_session(url, storage, browser) as client:
        assert not (await client.call_tool("listItems", {})).is_error
    await browser.aclose()
    assert storage.tokens is not None
    token = storage.tokens.access_token

    redis.pause()
    caplog.set_level(logging.INFO)
    async with httpx2.AsyncClient(timeout=30) as http:
        started = time.monotonic()
        answers = await asyncio.gather(*(_call(http, url, token) for _ in range(8)))
        elapsed = time.monotonic() - started
        assert elapsed < WITHIN_BOUND, f"callers waited {elapsed:.1f} s"
        for answer in answers:
            assert answer.status_code == 503, answer.text
            assert 1 <= int(answer.headers["Retry-After"]) <= RETRY_AFTER
            body = answer.json()
            assert body["error"] == "sign_in_unavailable"
            assert "redis store is unavailable" in body["message"] and "try again in" in body["message"]

        # While it counts as down, callers are answered at once, with the same error.
        started = time.monotonic()
        again = await _call(http, url, token)
        assert again.status_code == 503 and again.json()["error"] == "sign_in_unavailable"
        assert time.monotonic() - started < STORE_TIMEOUT

        ready = await http.get(f"{stack.proxy.url}/readyz")
        assert ready.status_code == 503 and ready.json()["store"]["reachable"] is False

        # The authorization server's endpoints answer the same way (here: a client refreshing its token).
        assert storage.client_info is not None and storage.tokens.refresh_token
        refreshed = await http.post(f"{stack.proxy.url}/token", data={
            "grant_type": "refresh_token", "refresh_token": storage.tokens.refresh_token,
            "client_id": storage.client_info.client_id})
        assert refreshed.status_code == 503 and refreshed.json()["error"] == "temporarily_unavailable"
        assert int(refreshed.headers["Retry-After"]) >= 1

        redis.resume()
        still = await _call(http, url, token)  # the cool-off has not passed: answered at once, not tried
        assert still.status_code == 503 and 1 <= int(still.headers["Retry-After"]) <= RETRY_AFTER
        stack.clock.advance(RETRY_AFTER)
        answer = await _call(http, url, token)
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"]["isError"] is False, answer.text
    messages = [record.getMessage() for record in caplog.records]
    assert "failed inside the proxy" not in " ".join(messages)
    assert "store unavailable" in messages and "store answers again" in messages


@pytest.fixture
async def paused_grant_store(redis: OwnRedis) -> AsyncIterator[GuardedStore]:
    store = GuardedStore(RedisStore(redis.url), "redis")
    yield store
    redis.resume()
    await store.close()


async def test_a_tool_call_whose_grant_cannot_be_read_says_try_again_in_n_seconds(
    redis: OwnRedis, paused_grant_store: GuardedStore
) -> None:
    """The tool-level answer: the caller's upstream grant is read from the paused store inside the call."""
    auth = OAuth2Auth(type="oauth2", authorization_url="http://127.0.0.1:9/a", token_url="http://127.0.0.1:9/t",
                      client_id="c", client_secret=SecretStr("s"))
    oauth = UpstreamOAuth("items", auth, store=paused_grant_store, cipher=Cipher.from_secret("c" * 40),
                          callback_url="http://127.0.0.1:9/oauth/callback")
    compiled = compile_spec(openapi_document("oauth", "http://127.0.0.1:9"))
    credentials = bridge_credentials(oauth)
    workspace = WorkspaceRuntime(
        name="items",
        tools=MappingProxyType({t.name: ToolRuntime(t, ArgumentValidator(t.input_schema)) for t in compiled.tools}),
        listing=MappingProxyType({}),
        base_url="http://127.0.0.1:9",
        credentials=credentials,
        timeout=10.0,
        max_response_bytes=1 << 20,
        extra_headers=MappingProxyType({}),
        protected_headers=frozenset(credentials.protected_headers),
        oauth=auth,
    )
    forwarder = Forwarder()
    await forwarder.start()
    caller = ToolCaller(forwarder, Observer(AuditTrail(None)))
    try:
        redis.pause()
        started = time.monotonic()
        result = await caller.call(workspace, "listItems", {}, "grant-id-of-a-signed-in-user")
        assert time.monotonic() - started < WITHIN_BOUND
        second = await caller.call(workspace, "listItems", {}, "grant-id-of-a-signed-in-user")
    finally:
        await forwarder.close()
        await oauth.aclose()
    for answer in (result, second):
        text = answer.content[0].text
        assert answer.is_error
        assert text.startswith("Tool 'listItems' cannot run right now: castproxy's redis store is unavailable")
        assert "try again in" in text and " s." in text
    samples = parse(caller.observer.metrics.render().decode())
    assert value(samples, "castproxy_tool_calls_total", workspace="items", tool="listItems",
                 outcome="store_unavailable") == 2
