"""`castproxy serve --workers 2` as an operator runs it: two processes on one port sharing one SQLite store.

The upstream is the bundled test server in oauth mode, in this process behind a recorder that also
notes every refresh token presented and makes refreshes slow (0.3 s), so that calls on both workers
overlap a refresh. Without a lock across processes both workers would refresh with the same refresh
token; the test server rotates them and answers a reuse with invalid_grant (ending the sign-in).
Which worker did what is read from the audit trail: each worker writes its own file (`{pid}` in the
path); /metrics answers the sum over both workers, whichever accepts the scrape.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx2
import pytest
from oauth_e2e_support import SECRET_KEY, call_concurrently, write_config
from support import web
from support.clock import FakeClock
from support.metrics import scrape, value
from support.net import free_port
from support.oauth_client import Browser, MemoryStorage, mcp_session
from support.recording import UpstreamRecorder, read_body, replaying
from support.serve_process import stop_serve
from support.servers import Running, run

from castproxy.testserver.app import create_app as create_testserver

pytestmark = pytest.mark.slow

CLIENT_SECRET = "e2e-workers-client-secret-0123456789"
SERVE_ENV = {"E2E_CLIENT_SECRET": CLIENT_SECRET, "E2E_SECRET_KEY": SECRET_KEY}
REFRESH_DELAY = 0.3


class SlowRefreshes:
    """Counts each refresh token presented at the token endpoint, and answers refreshes late."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.presented: Counter[str] = Counter()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/auth/token":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        form = parse_qs(body.decode())
        if form.get("grant_type") == ["refresh_token"]:
            self.presented[form.get("refresh_token", [""])[0]] += 1
            await asyncio.sleep(REFRESH_DELAY)
        await self.app(scope, replaying(body, receive), send)


class Stack:
    def __init__(self, folder: Path, token_lifetime: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.clock = FakeClock()  # the upstream's: advancing it expires what it issued (castproxy's clock is real)
        self.app = create_testserver("oauth", client_secret=CLIENT_SECRET, auto_approve=True,
                                     redirect_uris=[f"{self.url}/oauth/callback"], token_lifetime=token_lifetime,
                                     clock=self.clock)
        self.recorder = UpstreamRecorder(self.app)
        self.slow = SlowRefreshes(self.recorder)
        self.upstream: Running = run(self.slow)
        self.config = write_config(folder, self.url, self.upstream.url)
        self.config.write_text(self.config.read_text().replace(
            "  secret_key: ${env:E2E_SECRET_KEY}\n",
            "  secret_key: ${env:E2E_SECRET_KEY}\n  audit: {sink: file, path: \"./audit/trail-{pid}.jsonl\"}\n"))
        self.audit = folder / "audit"
        self.process: subprocess.Popen[str] | None = None
        self.log = ""

    def start(self, *args: str, env: dict[str, str] | None = None) -> None:
        """`castproxy serve` with its log in a file: a line per call would fill (and block on) a pipe."""
        self.log_path = self.config.with_name("serve.log")
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "castproxy", "serve", "-c", str(self.config), "--port", str(self.port),
                 "--no-reload", *args],
                env={**os.environ, **SERVE_ENV, **(env or {})}, stdout=subprocess.DEVNULL, stderr=log, text=True,
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log_path.read_text()
            assert time.monotonic() < deadline, "castproxy serve did not answer /healthz within 60 s"
            try:
                if web.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                time.sleep(0.05)
        workers = int(dict(zip(args[::2], args[1::2], strict=False)).get("--workers")
                      or (env or {}).get("CASTPROXY_WORKERS", "1"))
        while len(pids_seen(self, event="start")) < workers:  # every worker serves (its trail says so)
            assert time.monotonic() < deadline, "not every worker started"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            stop_serve(self.process)
            self.log += self.log_path.read_text()
            self.process = None
        self.upstream.stop()


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    started = Stack(tmp_path, getattr(request, "param", 3600))
    yield started
    started.stop()
    assert CLIENT_SECRET not in started.log and SECRET_KEY not in started.log


def pids_seen(stack: Stack, **fields: str) -> set[str]:
    """Worker pids whose audit file has a record with these fields (e.g. event="tool_call", outcome="ok")."""
    seen = set()
    for path in stack.audit.glob("trail-*.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
        if any(record.items() >= fields.items() for record in records):
            seen.add(path.stem.removeprefix("trail-"))
    return seen


async def wait_for_both_workers(stack: Stack, timeout: float = 20, **fields: str) -> set[str]:
    """Both workers recorded such an event (the trail is written every 0.1 s)."""
    deadline = time.monotonic() + timeout
    while len(seen := pids_seen(stack, **fields)) < 2:
        assert time.monotonic() < deadline, f"only workers {seen} recorded {fields}"
        await asyncio.sleep(0.02)
    return seen


async def sign_in(stack: Stack) -> str:
    storage, browser = MemoryStorage(), Browser()
    try:
        # Registration, consent, the upstream's callback and the token request land on either worker.
        async with mcp_session(f"{stack.url}/mcp/items", storage, browser, "legacy") as client:
            assert not (await client.call_tool("listItems", {})).is_error
    finally:
        await browser.aclose()
    assert storage.tokens is not None and browser.sign_ins == 1
    return storage.tokens.access_token


def all_succeeded(responses: list[httpx2.Response]) -> None:
    for response in responses:
        assert response.status_code == 200, response.text
        assert response.json()["result"]["isError"] is False, response.text


async def test_two_workers_sharing_sqlite_refresh_a_refused_token_once(stack: Stack) -> None:
    stack.start("--workers", "2")
    token = await sign_in(stack)
    url = f"{stack.url}/mcp/items"
    all_succeeded(await call_concurrently([url], token, 20))
    await wait_for_both_workers(stack, event="tool_call", workspace="items", outcome="ok")
    assert stack.recorder.refreshes == 0

    stack.clock.advance(3600)  # the upstream's tokens (1 h) expired: it refuses every access token it issued
    all_succeeded(await call_concurrently([url], token, 40))
    assert stack.recorder.refreshes == 1
    assert list(stack.slow.presented.values()) == [1]
    # /metrics, from whichever worker answers, counts the calls of both (prometheus_client multiprocess mode).
    samples = scrape(stack.url)
    calls = value(samples, "castproxy_tool_calls_total", workspace="items", tool="listItems", outcome="ok")
    assert calls == 61  # 20 + 40, and the sign-in's
    assert value(samples, "castproxy_token_refreshes_total", workspace="items", outcome="ok") == 1


@pytest.mark.parametrize("stack", [2], indirect=True)  # upstream access tokens live 2 s
async def test_two_workers_refresh_each_expiring_token_once(stack: Stack) -> None:
    stack.start("--workers", "2")
    token = await sign_in(stack)
    url = f"{stack.url}/mcp/items"
    deadline = time.monotonic() + 20
    # Calls keep coming on both workers while tokens expire (twice), as under real traffic.
    while stack.recorder.refreshes < 2:
        assert time.monotonic() < deadline, "no refresh seen"
        all_succeeded(await call_concurrently([url], token, 16))
    all_succeeded(await call_concurrently([url], token, 16))
    # Every refresh token was used once: no worker refreshed what the other had just refreshed.
    assert set(stack.slow.presented.values()) == {1}, stack.slow.presented
    await wait_for_both_workers(stack, event="tool_call", workspace="items", outcome="ok")


async def test_workers_from_the_environment_each_reload_on_sighup(stack: Stack, tmp_path: Path) -> None:
    stack.start(env={"CASTPROXY_WORKERS": "2"})
    assert stack.process is not None
    process = stack.process
    first = {path.stem.removeprefix("trail-") for path in stack.audit.glob("trail-*.jsonl")}
    assert len(first) == 2 and value(scrape(stack.url), "castproxy_config_reloads_total", outcome="ok") == 0
    stack.config.write_text(stack.config.read_text().replace("tools: [listUsers]", "tools: [listUsers, getUser]"))
    process.send_signal(signal.SIGHUP)
    after = await wait_for_both_workers(stack, event="reload", outcome="ok")
    assert after == first  # the same two workers reloaded in place, none was restarted
    assert value(scrape(stack.url), "castproxy_config_reloads_total", outcome="ok") == 2  # one per worker


def test_bad_config_with_workers_prints_positions_and_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "cast.yaml"
    config.write_text("version: 1\nworkspaces:\n  items:\n    openapi: spec.json\n    tools: [a]\n    timeout: soon\n")
    result = subprocess.run([sys.executable, "-m", "castproxy", "serve", "-c", str(config), "--workers", "2"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert re.match(rf"{re.escape(str(config))}:6:\d+: ", result.stderr), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_bad_worker_count_is_a_usage_error(tmp_path: Path, value: str) -> None:
    config = tmp_path / "cast.yaml"
    config.write_text("version: 1\nworkspaces: {}\n")
    by_option = subprocess.run([sys.executable, "-m", "castproxy", "serve", "-c", str(config), "--workers", value],
                               capture_output=True, text=True, timeout=60)
    assert by_option.returncode == 2 and "--workers" in by_option.stderr
    by_env = subprocess.run([sys.executable, "-m", "castproxy", "serve", "-c", str(config)],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "CASTPROXY_WORKERS": value})
    assert by_env.returncode == 2 and "CASTPROXY_WORKERS" in by_env.stderr


def test_busy_port_with_workers_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text('{"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}}')
    config = tmp_path / "cast.yaml"
    config.write_text("version: 1\nstore:\n  path: state.db\nworkspaces:\n  items:\n    openapi: spec.json\n"
                      "    base_url: http://127.0.0.1:9\n    tools: ['*']\n")
    import socket

    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # even a SO_REUSEPORT listener is noticed
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "castproxy", "serve", "-c", str(config), "--port", str(port),
                                 "--workers", "2"], capture_output=True, text=True, timeout=60)
    finally:
        taken.close()
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr and "serving" not in result.stderr
