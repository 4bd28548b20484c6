"""What the `mcp` SDK's OAuthClientProvider needs in a test: token storage in memory and a browser stand-in.

The browser stand-in does what a user's browser does during the MCP client's sign-in, over real HTTP:
it opens castproxy's /authorize, approves the consent form (with its CSRF token and cookie), follows
the upstream's authorize redirect (auto-approved) to castproxy's callback, and stops at the MCP
client's loopback redirect URI, handing the code to the SDK's callback handler.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx2
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from support import web

CLIENT_REDIRECT = "http://127.0.0.1:47821/callback"


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


class SignInBrowser(Protocol):
    client_redirect: str

    async def redirect_handler(self, authorization_url: str) -> None: ...

    async def callback_handler(self) -> AuthorizationCodeResult: ...


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def code_result(query: dict[str, str]) -> AuthorizationCodeResult:
    assert "code" in query, f"sign-in failed: {query}"
    return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


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
        self.http = httpx2.AsyncClient(follow_redirects=False, timeout=15, verify=web.TLS)

    async def redirect_handler(self, authorization_url: str) -> None:
        self.sign_ins += 1
        self._answer = asyncio.get_running_loop().create_future()
        location = authorization_url
        for _ in range(12):
            if location.startswith(self.client_redirect):
                self._answer.set_result(query_of(location))
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
        return code_result(await self._answer)

    async def aclose(self) -> None:
        await self.http.aclose()


def provider(
    server_url: str, storage: MemoryStorage, browser: SignInBrowser, client_name: str = "castproxy e2e client"
) -> OAuthClientProvider:
    """The SDK's OAuth client for `server_url`: registers itself, signs in through `browser`."""
    metadata = OAuthClientMetadata(
        redirect_uris=[browser.client_redirect],  # type: ignore[list-item]
        client_name=client_name,
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


@asynccontextmanager
async def mcp_session(
    url: str, storage: MemoryStorage, browser: SignInBrowser, mode: str = "legacy"
) -> AsyncIterator[Client]:
    """The `mcp` SDK client on `url`, signing in through `browser` when `storage` holds no usable token."""
    async with (
        httpx2.AsyncClient(auth=provider(url, storage, browser), timeout=30, verify=web.TLS) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode, cache=None) as client,
    ):
        yield client


async def sign_in_with_scope(
    base_url: str, workspace: str, scope: str | None, browser: Browser | None = None
) -> MemoryStorage:
    """Sign in to castproxy's `workspace` asking for exactly `scope` (the SDK's provider would ask for the
    scopes of the 401 challenge instead), through the browser stand-in; returns the filled token storage,
    ready for `mcp_session`, which then uses these tokens without another sign-in."""
    own = browser is None
    browser = browser or Browser()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    async with httpx2.AsyncClient(base_url=base_url, timeout=15, verify=web.TLS) as http:
        registered = await http.post(
            "/register",
            json={
                "redirect_uris": [browser.client_redirect],
                "client_name": f"scoped client ({scope})",
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
            },
        )
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": browser.client_redirect,
            "state": secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": f"{base_url}/mcp/{workspace}",
        }
        if scope is not None:
            params["scope"] = scope
        await browser.redirect_handler(f"{base_url}/authorize?{urlencode(params)}")
        answer = await browser.callback_handler()
        response = await http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": answer.code,
                "redirect_uri": browser.client_redirect,
                "client_id": client_id,
                "code_verifier": verifier,
                "resource": params["resource"],
            },
        )
        assert response.status_code == 200, response.text
    if own:
        await browser.aclose()
    storage = MemoryStorage()
    storage.tokens = OAuthToken.model_validate(response.json())
    storage.client_info = OAuthClientInformationFull.model_validate(registered.json())
    return storage
