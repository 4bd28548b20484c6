"""Company sign-in end to end: oidc-provider (a certified OpenID Provider, run with Node) signs people in,
castproxy names them on its consent page, then the upstream sign-in follows; policies by email domain and
group decide who may connect and who may call which tool; one company sign-in serves several workspaces.
A test-controlled provider then hands castproxy wrong ID tokens (nonce, audience, expiry, signature), each
refused with a clear page and a log line.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from e2e.oauth_e2e_support import SECRET_KEY, start_oauth_upstream
from support.identity import CLIENT_ID, CLIENT_SECRET, CompanyBrowser, start_oidc_provider, start_test_provider
from support.net import free_socket
from support.oauth_client import MemoryStorage, mcp_session
from support.recording import start_recorded
from support.servers import Running, run

from castproxy.serve.app import create_app

UPSTREAM_SECRET = "upstream-client-secret-0123456789"
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}


@dataclass
class Stack:
    proxy: Running
    url: str
    stops: list

    def stop(self) -> None:
        self.proxy.stop()
        for stop in self.stops:
            stop()


def _config(folder: Path, proxy_url: str, issuer: str, upstream: str, open_upstream: str) -> Path:
    port = proxy_url.rsplit(":", 1)[1]
    path = folder / "cast.yaml"
    path.write_text(f"""version: 1
server:
  public_url: {proxy_url}
  port: {port}
  secret_key: ${{env:E2E_SECRET_KEY}}
  identity:
    issuer: {issuer}
    client_id: {CLIENT_ID}
    client_secret: ${{env:E2E_IDP_SECRET}}
    scopes: [openid, email, profile, groups]
    groups_claim: groups
store:
  path: state.db
workspaces:
  items:
    openapi: {upstream}/openapi.json
    base_url: {upstream}
    auth:
      type: oauth2
      authorization_url: {upstream}/auth/authorize
      token_url: {upstream}/auth/token
      client_id: test-client-id
      client_secret: ${{env:E2E_CLIENT_SECRET}}
      scopes: [read:items, write:items, read:users]
    access:
      domains: [corp.example]
    tools:
      - listItems
      - operation: createItem
        access: {{groups: [admins]}}
  users:
    openapi: {upstream}/openapi.json
    base_url: {upstream}
    auth:
      type: oauth2
      authorization_url: {upstream}/auth/authorize
      token_url: {upstream}/auth/token
      client_id: test-client-id
      client_secret: ${{env:E2E_CLIENT_SECRET}}
      scopes: [read:users]
    tools: [listUsers]
  open:
    openapi: {open_upstream}/openapi.json
    base_url: {open_upstream}
    access:
      groups: [eng]
    tools: [listItems]
""")
    return path


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("E2E_CLIENT_SECRET", UPSTREAM_SECRET)
    monkeypatch.setenv("E2E_IDP_SECRET", CLIENT_SECRET)
    proxy_socket = free_socket()
    proxy_url = f"http://127.0.0.1:{proxy_socket.getsockname()[1]}"
    provider = start_oidc_provider([f"{proxy_url}/oauth/identity/callback"])
    upstream = start_oauth_upstream([proxy_url], UPSTREAM_SECRET)
    open_upstream = start_recorded("none", UPSTREAM_SECRET)
    config = _config(tmp_path, proxy_url, provider.issuer, upstream.url, open_upstream.url)
    running = Stack(run(create_app(config, reload=False), proxy_socket), proxy_url,
                    [provider.stop, upstream.stop, open_upstream.stop])
    yield running
    running.stop()


async def _refused(url: str, browser: CompanyBrowser) -> None:
    """Connecting fails: the SDK client gets no code, the sign-in stopped at one of castproxy's pages."""
    try:
        async with mcp_session(url, MemoryStorage(), browser):
            pass
    except Exception:
        assert browser.pages, "the sign-in failed before reaching a page"
        return
    raise AssertionError("connecting was not refused")


def _text(result: object) -> str:
    return " ".join(getattr(part, "text", "") for part in getattr(result, "content", []))


async def test_a_person_signs_in_at_the_company_provider_and_one_sign_in_serves_several_workspaces(
    stack: Stack,
) -> None:
    browser = CompanyBrowser(person="alice")
    try:
        async with mcp_session(f"{stack.url}/mcp/items", MemoryStorage(), browser) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert names == {"listItems", "createItem"}  # alice is in admins
            created = await client.call_tool("createItem", {"name": "from alice"})
            assert not created.is_error, _text(created)
        assert browser.provider_logins == 1
        assert browser.consent_pages == 1
        # A second workspace in the same browser: the company session is reused, no second provider login.
        async with mcp_session(f"{stack.url}/mcp/users", MemoryStorage(), browser) as client:
            assert not (await client.call_tool("listUsers", {})).is_error
        assert browser.provider_logins == 1
        assert browser.consent_pages == 2
    finally:
        await browser.aclose()


async def test_the_consent_page_names_the_person(stack: Stack) -> None:
    browser = CompanyBrowser(person="bob")
    seen: list[str] = []
    original = browser.http.get

    async def get(url: str, **kwargs: object) -> httpx2.Response:
        response = await original(url, **kwargs)  # type: ignore[arg-type]
        if 'name="csrf_token"' in response.text:
            seen.append(response.text)
        return response

    browser.http.get = get  # type: ignore[method-assign]
    try:
        async with mcp_session(f"{stack.url}/mcp/users", MemoryStorage(), browser) as client:
            assert not (await client.call_tool("listUsers", {})).is_error
    finally:
        await browser.aclose()
    assert len(seen) == 1 and "Signed in as" in seen[0] and "bob@corp.example" in seen[0]


async def test_a_tool_limited_to_a_group_is_absent_and_refused_for_others(stack: Stack) -> None:
    browser = CompanyBrowser(person="bob")  # eng, not admins
    try:
        async with mcp_session(f"{stack.url}/mcp/items", MemoryStorage(), browser) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert names == {"listItems"}
            refused = await client.call_tool("createItem", {"name": "from bob"})
            assert refused.is_error
            assert "not available to bob@corp.example" in _text(refused)
            assert not (await client.call_tool("listItems", {})).is_error
    finally:
        await browser.aclose()


async def test_a_person_outside_the_allowed_domain_is_refused_at_connect(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    browser = CompanyBrowser(person="mallory")
    caplog.set_level(logging.WARNING, logger="castproxy.auth")
    try:
        await _refused(f"{stack.url}/mcp/items", browser)
        status, text = browser.pages[-1]
        assert status == 403
        assert "mallory@elsewhere.example" in text and "may not use workspace items" in text
        assert browser.consent_pages == 0  # refused before consent, so before the upstream sign-in
        assert any("access policy" in record.getMessage() for record in caplog.records)
    finally:
        await browser.aclose()


async def test_a_shared_credential_workspace_needs_the_company_sign_in_too(stack: Stack) -> None:
    async with httpx2.AsyncClient(timeout=15) as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        anonymous = await http.post(f"{stack.url}/mcp/open", json=body, headers=HEADERS)
        assert anonymous.status_code == 401
        assert "resource_metadata=" in anonymous.headers["www-authenticate"]
    browser = CompanyBrowser(person="bob")
    try:
        async with mcp_session(f"{stack.url}/mcp/open", MemoryStorage(), browser) as client:
            assert not (await client.call_tool("listItems", {})).is_error
        assert browser.provider_logins == 1
    finally:
        await browser.aclose()
    outsider = CompanyBrowser(person="mallory")  # not in eng
    try:
        await _refused(f"{stack.url}/mcp/open", outsider)
        assert outsider.pages[-1][0] == 403
    finally:
        await outsider.aclose()


# -- wrong ID tokens -----------------------------------------------------------------------------------------

@pytest.fixture
def spoiling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, object]]:
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    provider = start_test_provider()
    upstream = start_recorded("none", UPSTREAM_SECRET)
    sock = free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = tmp_path / "cast.yaml"
    config.write_text(f"""version: 1
server:
  public_url: {url}
  secret_key: ${{env:E2E_SECRET_KEY}}
  identity: {{issuer: "{provider.issuer}", client_id: {CLIENT_ID}, client_secret: not-checked-here-0123456789}}
store: {{path: state.db}}
workspaces:
  open:
    openapi: {upstream.url}/openapi.json
    base_url: {upstream.url}
    tools: [listItems]
""")
    proxy = run(create_app(config, reload=False), sock)
    yield url, provider
    proxy.stop()
    provider.stop()
    upstream.stop()


async def _sign_in_page(url: str) -> tuple[int, str]:
    """Start a sign-in like an MCP client and follow it like a browser: the page it ends on."""
    browser = CompanyBrowser()
    try:
        registered = await browser.http.post(f"{url}/register", json={
            "redirect_uris": [browser.client_redirect], "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"], "client_name": "spoil test"})
        client_id = registered.json()["client_id"]
        params = {"response_type": "code", "client_id": client_id, "redirect_uri": browser.client_redirect,
                  "state": "s", "code_challenge": secrets.token_urlsafe(32)[:43].ljust(43, "a"),
                  "code_challenge_method": "S256", "resource": f"{url}/mcp/open"}
        location = str(httpx2.URL(f"{url}/authorize", params=params))
        for _ in range(10):
            response = await browser.open(location)
            if response.status_code not in (302, 303):
                return response.status_code, response.text
            location = str(httpx2.URL(location).join(response.headers["location"]))
            if location.startswith(browser.client_redirect):
                return 0, location
        raise AssertionError("too many redirects")
    finally:
        await browser.aclose()


async def test_a_good_id_token_from_the_test_provider_is_accepted(spoiling: tuple[str, object]) -> None:
    url, _ = spoiling
    status, location = await _sign_in_page(url)
    assert status == 0 and "code=" in location  # consent approved, code delivered to the client


@pytest.mark.parametrize(("spoil", "said"), [
    ("nonce", "nonce does not match"),
    ("audience", "issued for another client"),
    ("expired", "ID token has expired"),
    ("signature", "signature does not verify"),
    ("issuer", "was issued by"),
])
async def test_a_wrong_id_token_is_refused_with_a_page_and_a_log_line(
    spoiling: tuple[str, object], spoil: str, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    url, provider = spoiling
    provider.spoil = spoil  # type: ignore[attr-defined]
    caplog.set_level(logging.WARNING, logger="castproxy.access")
    status, text = await _sign_in_page(url)
    assert status == 403
    assert "Sign-in refused" in text and said in text
    assert any(said in record.getMessage() for record in caplog.records if record.name == "castproxy.access")
