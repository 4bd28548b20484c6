"""`castproxy demo` end to end, as a user would go through it after running the command.

The demo runs as a real subprocess (test server in oauth mode + `castproxy serve` as its child). Then
the `mcp` SDK client connects to the printed MCP URL; its OAuthClientProvider registers at the proxy,
and a browser stand-in answers the proxy's consent page and the test server's approval page (the
real page, not --auto-approve), signing in as Bob. The client lists the five tutorial tools and
calls each one; finally SIGINT (Ctrl-C) stops everything and frees both ports.
"""

from __future__ import annotations

import asyncio
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
import pytest
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from castproxy.testserver.runner import bind_socket

TUTORIAL_TOOLS = {"listItems", "createItem", "listUsers", "getItem", "delete_item"}
CLIENT_REDIRECT = "http://127.0.0.1:47999/callback"  # never listened on: the browser stand-in stops there
BOB = 2


def free_port() -> int:
    sock = bind_socket("127.0.0.1", 0)
    try:
        return sock.getsockname()[1]
    finally:
        sock.close()


def port_is_free(port: int) -> bool:
    try:
        bind_socket("127.0.0.1", port).close()
    except OSError:
        return False
    return True


@dataclass
class Demo:
    process: subprocess.Popen[str]
    port: int
    upstream_port: int
    lines: queue.Queue[str]
    output: list[str] = field(default_factory=list)

    def read_until(self, marker: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if marker in line:
                return "".join(self.output)
        raise AssertionError(f"demo did not print {marker!r}; output so far:\n{''.join(self.output)}")

    def stop(self, signum: int = signal.SIGINT) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_demo(command: list[str], cwd: Path, port: int, upstream_port: int, log: Path) -> Demo:
    """Start a demo command; its stdout lines are collected by a thread, its log goes to `log`."""
    with log.open("w") as log_file:
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=log_file, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return Demo(process, port, upstream_port, lines)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    port, upstream_port = free_port(), free_port()
    command = [sys.executable, "-m", "castproxy", "demo", "--port", str(port), "--upstream-port", str(upstream_port)]
    running = start_demo(command, tmp_path, port, upstream_port, tmp_path / "demo.log")
    yield running
    running.kill()


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@dataclass
class Browser:
    """What the user's browser does: castproxy's consent page, then the test server's approval page."""

    user_id: int
    pages: list[str] = field(default_factory=list)
    _answer: asyncio.Future[dict[str, str]] | None = None

    def __post_init__(self) -> None:
        self.http = httpx2.AsyncClient(follow_redirects=False, timeout=15)

    async def open(self, authorization_url: str) -> None:
        self._answer = asyncio.get_running_loop().create_future()
        location = authorization_url
        for _ in range(12):
            if location.startswith(CLIENT_REDIRECT):
                self._answer.set_result({k: v[0] for k, v in parse_qs(urlsplit(location).query).items()})
                return
            response = await self.http.get(location)
            if response.status_code == 200:
                response = await self._answer_page(location, response.text)
            assert response.status_code in (302, 303), f"stopped at {location}: {response.status_code} {response.text}"
            location = urljoin(location, response.headers["location"])
        raise AssertionError("too many redirects during sign-in")

    async def _answer_page(self, location: str, page: str) -> httpx2.Response:
        parts = urlsplit(location)
        origin = f"{parts.scheme}://{parts.netloc}"
        action = re.search(r"<form method=[\"']?post[\"']? action=[\"']([^\"']+)[\"']", page)
        assert action, page
        fields = dict(re.findall(r"name=[\"']?(request_id|csrf_token)[\"']? value=[\"']([^\"']*)[\"']", page))
        if "csrf_token" in fields:
            self.pages.append("castproxy consent")
        else:
            self.pages.append("test server approval")
            assert "read:users" in page and "Sign in as" in page
            fields["user_id"] = str(self.user_id)
        fields["decision"] = "approve"
        return await self.http.post(urljoin(location, action.group(1)), data=fields, headers={"Origin": origin})

    async def code(self) -> AuthorizationCodeResult:
        assert self._answer is not None
        query = await self._answer
        assert "code" in query, f"sign-in failed: {query}"
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


def _provider(url: str, storage: MemoryStorage, browser: Browser) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(
        redirect_uris=[CLIENT_REDIRECT],  # type: ignore[list-item]
        client_name="Claude Desktop (test)",
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method="none",
    )
    return OAuthClientProvider(url, metadata, storage, redirect_handler=browser.open, callback_handler=browser.code)


def mcp_url(output: str) -> str:
    match = re.search(r"MCP URL\s*:\s*(\S+)", output)
    assert match, output
    return match.group(1)


async def run_tutorial(url: str) -> None:
    """What a user does next: connect, sign in (consent + approval page, as Bob), list and call every tool."""
    storage, browser = MemoryStorage(), Browser(user_id=BOB)
    async with (
        httpx2.AsyncClient(auth=_provider(url, storage, browser), timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy", cache=None) as client,
    ):
        tools = await client.list_tools()
        assert {tool.name for tool in tools.tools} == TUTORIAL_TOOLS
        assert browser.pages == ["castproxy consent", "test server approval"]

        listed = await client.call_tool("listItems", {})
        assert not listed.is_error, listed
        assert listed.structured_content["total"] == 3

        users = await client.call_tool("listUsers", {})
        assert not users.is_error, users
        assert {user["email"] for user in users.structured_content["users"]} >= {"bob@example.com"}

        created = await client.call_tool("createItem", {"name": "Demo item", "price": 12.5, "tags": ["demo"]})
        assert not created.is_error, created
        item = created.structured_content
        assert item["name"] == "Demo item" and item["owner_id"] == BOB  # the upstream saw Bob's own token

        fetched = await client.call_tool("getItem", {"id": item["id"]})
        assert not fetched.is_error and fetched.structured_content == item

        deleted = await client.call_tool("delete_item", {"id": item["id"]})
        assert not deleted.is_error, deleted

        gone = await client.call_tool("getItem", {"id": item["id"]})
        assert gone.is_error and "404" in gone.content[0].text
    await browser.http.aclose()
    # The client holds castproxy's token, never the upstream's (the test server's start with at_).
    assert storage.tokens is not None and not storage.tokens.access_token.startswith("at_")


async def test_demo_sign_in_then_every_tutorial_tool(demo: Demo) -> None:
    output = demo.read_until("Press Ctrl-C to stop")
    url = mcp_url(output)
    assert url == f"http://localhost:{demo.port}/mcp/test-oauth"
    assert "client_id     : test-client-id" in output and '"mcp-remote@latest"' in output

    await run_tutorial(url)

    assert demo.stop(signal.SIGINT) == 0
    assert port_is_free(demo.port) and port_is_free(demo.upstream_port)
    config = re.search(r"Config\s*:\s*(\S+)", output).group(1)
    assert not Path(config).parent.exists()


def test_demo_stops_cleanly_on_sigterm(demo: Demo) -> None:
    demo.read_until("Press Ctrl-C to stop")
    assert demo.stop(signal.SIGTERM) == 0
    assert port_is_free(demo.port) and port_is_free(demo.upstream_port)


def test_demo_refuses_a_taken_port(tmp_path: Path) -> None:
    taken = bind_socket("127.0.0.1", 0)
    taken.listen()
    try:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "castproxy", "demo", "--port", str(port), "--upstream-port", str(free_port())],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )
    finally:
        taken.close()
    assert result.returncode == 1
    assert f"port {port} is in use" in result.stderr and "--port" in result.stderr
