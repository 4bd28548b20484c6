"""The user's side of `castproxy demo`, shared by the demo, fresh-clone and tutorial tests.

`start_demo` runs a demo command and collects its output; `run_tutorial` is what a user does next: the
`mcp` SDK client connects to the printed MCP URL, its OAuthClientProvider registers at the proxy, and a
browser stand-in answers the proxy's consent page and the test server's approval page (the real page,
not --auto-approve), signing in as Bob; then it lists the five tutorial tools and calls each one.
"""

from __future__ import annotations

import asyncio
import queue
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult
from support.oauth_client import MemoryStorage, code_result, provider, query_of

TUTORIAL_TOOLS = {"listItems", "createItem", "listUsers", "getItem", "delete_item"}
CLIENT_REDIRECT = "http://127.0.0.1:47999/callback"  # never listened on: the browser stand-in stops there
BOB = 2


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


@dataclass
class Browser:
    """What the user's browser does: castproxy's consent page, then the test server's approval page."""

    user_id: int
    client_redirect: str = CLIENT_REDIRECT
    pages: list[str] = field(default_factory=list)
    _answer: asyncio.Future[dict[str, str]] | None = None

    def __post_init__(self) -> None:
        self.http = httpx2.AsyncClient(follow_redirects=False, timeout=15)

    async def redirect_handler(self, authorization_url: str) -> None:
        self._answer = asyncio.get_running_loop().create_future()
        location = authorization_url
        for _ in range(12):
            if location.startswith(self.client_redirect):
                self._answer.set_result(query_of(location))
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

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self._answer is not None
        return code_result(await self._answer)


def mcp_url(output: str) -> str:
    match = re.search(r"MCP URL\s*:\s*(\S+)", output)
    assert match, output
    return match.group(1)


async def run_tutorial(url: str) -> None:
    """What a user does next: connect, sign in (consent + approval page, as Bob), list and call every tool."""
    storage, browser = MemoryStorage(), Browser(user_id=BOB)
    async with (
        httpx2.AsyncClient(auth=provider(url, storage, browser, "Claude Desktop (test)"), timeout=30) as http,
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


ALICE = 1


async def run_login_tools(url: str) -> None:
    """The same tools on an `auth.type: login` workspace: no sign-in; the upstream sees the proxy's login (Alice)."""
    async with Client(streamable_http_client(url), mode="legacy", cache=None) as client:
        tools = await client.list_tools()
        assert {tool.name for tool in tools.tools} == TUTORIAL_TOOLS

        listed = await client.call_tool("listItems", {})
        assert not listed.is_error, listed
        assert listed.structured_content["total"] == 3

        created = await client.call_tool("createItem", {"name": "Demo item", "price": 12.5, "tags": ["demo"]})
        assert not created.is_error, created
        item = created.structured_content
        assert item["owner_id"] == ALICE  # the JWT castproxy got by logging in as alice

        deleted = await client.call_tool("delete_item", {"id": item["id"]})
        assert not deleted.is_error, deleted
