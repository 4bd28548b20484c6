"""End-to-end OAuth helpers: the bundled test upstream, the proxy app on loopback, a browser stand-in.

The browser stand-in is what a user's browser does during the MCP client's sign-in, over real HTTP:
it opens castproxy's /authorize, approves the consent form (with its CSRF token and cookie), follows
the upstream's authorize redirect (auto-approved) to castproxy's callback, and stops at the MCP
client's loopback redirect URI, handing the code to the SDK's callback handler.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
import uvicorn
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

CLIENT_REDIRECT = "http://127.0.0.1:47821/callback"
SECRET_KEY = "e2e-secret-key-0123456789abcdef-0123456789"


@dataclass
class Running:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def free_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


def run(app: Any, sock: socket.socket | None = None) -> Running:
    sock = sock or free_socket()
    config = uvicorn.Config(app, lifespan="on", access_log=False, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    return Running(f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread)


class BearerRecorder:
    """ASGI middleware in front of the upstream: remembers every Authorization header its API received."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[str] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/auth/"):
            for name, value in scope["headers"]:
                if name == b"authorization":
                    self.seen.append(value.decode())
        await self.app(scope, receive, send)


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
    """Follows the sign-in like a user's browser: cookies kept, consent approved, redirects followed."""

    client_redirect: str = CLIENT_REDIRECT  # where the MCP client listens for the answer
    deliver: bool = False  # actually open the client's redirect URI (a real client listens there)
    visited: list[str] = field(default_factory=list)
    consent_pages: int = 0
    sign_ins: int = 0
    _answer: asyncio.Future | None = None

    def __post_init__(self) -> None:
        self.http = httpx2.AsyncClient(follow_redirects=False, timeout=15)

    async def redirect_handler(self, authorization_url: str) -> None:
        self.sign_ins += 1
        self._answer = asyncio.get_running_loop().create_future()
        location = authorization_url
        for _ in range(12):
            if location.startswith(self.client_redirect):
                query = {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
                self._answer.set_result(query)
                if self.deliver:
                    await self.http.get(location)
                return
            self.visited.append(location)
            response = await self.http.get(location)
            if response.status_code == 200 and 'name="csrf_token"' in response.text:
                self.consent_pages += 1
                fields = dict(re.findall(r'name="(request_id|csrf_token)" value="([^"]*)"', response.text))
                action = re.search(r'<form method="post" action="([^"]+)"', response.text)
                assert action is not None
                parts = urlsplit(location)
                response = await self.http.post(
                    action.group(1),
                    data={**fields, "decision": "approve"},
                    headers={"Origin": f"{parts.scheme}://{parts.netloc}"},
                )
            if response.status_code not in (302, 303):
                raise AssertionError(
                    f"sign-in stopped at {location}: HTTP {response.status_code} {response.text[:300]}"
                )
            location = urljoin(location, response.headers["location"])
        raise AssertionError("too many redirects during sign-in")

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self._answer is not None
        query = await self._answer
        assert "code" in query, f"sign-in failed: {query}"
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    async def aclose(self) -> None:
        await self.http.aclose()


def provider(server_url: str, storage: MemoryStorage, browser: Browser) -> OAuthClientProvider:
    metadata = OAuthClientMetadata(
        redirect_uris=[CLIENT_REDIRECT],  # type: ignore[list-item]
        client_name="castproxy e2e client",
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method="none",
    )
    return OAuthClientProvider(
        server_url=server_url,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )


class UpstreamRecorder(BearerRecorder):
    """Also counts the refresh_token grants the upstream's token endpoint receives."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.refreshes = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/auth/token":
            await super().__call__(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if b"grant_type=refresh_token" in body:
            self.refreshes += 1
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def call_concurrently(urls: list[str], token: str, count: int) -> list[httpx2.Response]:
    """`count` tools/call requests at once, spread over `urls`, each with the castproxy access token."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
    }
    async with httpx2.AsyncClient(timeout=30, limits=httpx2.Limits(max_connections=count)) as http:

        async def one(index: int) -> httpx2.Response:
            body = {
                "jsonrpc": "2.0",
                "id": index,
                "method": "tools/call",
                "params": {"name": "listItems", "arguments": {}},
            }
            return await http.post(urls[index % len(urls)], headers=headers, json=body)

        return list(await asyncio.gather(*(one(index) for index in range(count))))
