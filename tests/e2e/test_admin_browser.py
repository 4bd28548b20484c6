"""The admin page in a real headless Chromium: sign in, look at a workspace, end a sign-in; the MCP client's
castproxy token is refused from then on and the upstream's refresh token is revoked (RFC 7009).

castproxy serves two per-user OAuth workspaces of the bundled test upstream; the `mcp` SDK client signs
in through the browser stand-in and calls a tool; then Playwright drives Debian's chromium.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from oauth_e2e_support import SECRET_KEY, start_oauth_upstream, write_config
from support import admin, web
from support.chromium import chromium_page, require_chromium
from support.net import free_socket
from support.oauth_client import Browser, MemoryStorage, mcp_session
from support.recording import RecordedUpstream
from support.servers import Running, run

from castproxy.serve.app import create_app

pytestmark = pytest.mark.slow

CLIENT_SECRET = "admin-e2e-client-secret-0123456789"
ADMIN_KEY = "admin-e2e-key-4c1f9a2b7d6e3058"


class Stack:
    def __init__(self, folder: Path) -> None:
        sock = free_socket()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.upstream: RecordedUpstream = start_oauth_upstream([self.url], CLIENT_SECRET)
        config = write_config(folder, self.url, self.upstream.url)
        config.write_text(config.read_text().replace(
            "  secret_key: ${env:E2E_SECRET_KEY}\n",
            "  secret_key: ${env:E2E_SECRET_KEY}\n  audit: {sink: off}\n"
            '  admin: {api_keys: ["${env:E2E_ADMIN_KEY}"]}\n',
        ).replace("token_url: ", f"revocation_url: {self.upstream.url}/auth/revoke\n      token_url: "))
        self.proxy: Running = run(create_app(config, reload=False), sock)

    def stop(self) -> None:
        self.proxy.stop()
        self.upstream.stop()


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    require_chromium()
    monkeypatch.setenv("E2E_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("E2E_ADMIN_KEY", ADMIN_KEY)
    running = Stack(tmp_path)
    yield running
    running.stop()


async def tools_list(url: str, token: str) -> httpx2.Response:
    async with httpx2.AsyncClient() as http:
        return await http.post(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                               json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})


async def test_sign_in_view_a_workspace_and_end_a_sign_in_in_chromium(stack: Stack) -> None:
    items = f"{stack.url}/mcp/items"
    storage, browser = MemoryStorage(), Browser()
    async with mcp_session(items, storage, browser) as client:
        for _ in range(3):
            assert not (await client.call_tool("listItems", {})).is_error
        assert (await client.call_tool("getItem", {"id": 999999})).is_error  # the upstream's 404
    assert storage.tokens is not None and storage.client_info is not None
    await browser.aclose()
    token = storage.tokens.access_token
    assert (await tools_list(items, token)).status_code == 200
    upstream_refresh_tokens = len(stack.upstream.oauth._refresh)

    async with chromium_page() as page:
        first = await page.goto(f"{stack.url}/admin")
        assert first is not None and first.status == 200
        headers = await first.all_headers()
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"

        await page.fill("#key", "not-the-admin-key")
        await page.click("button[type=submit]")
        assert "not an admin key" in await page.inner_text("[role=alert]")

        await page.fill("#key", ADMIN_KEY)
        await page.click("button[type=submit]")
        await page.wait_for_selector("text=Workspaces")
        [session] = [c for c in await page.context.cookies() if c["name"] == "castproxy_admin"]
        assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/admin"
        assert ADMIN_KEY not in session["value"]
        overview = await page.content()
        assert "listItems" in overview and "getItem" in overview  # recent calls from the audit trail

        await page.click("a[href='/admin/workspaces/items']")
        await page.wait_for_selector("h1:has-text('Workspace items')")
        row = page.locator("tr[data-tool=listItems]")
        assert (await row.locator("td").nth(2).inner_text()).strip() == "3"  # calls
        assert await row.locator("svg rect.calls").count() == 1  # this minute's bar in the chart
        failed = page.locator("tr[data-tool=getItem]")
        assert (await failed.locator("td").nth(3).inner_text()).strip() == "100.0%"
        assert await failed.locator("svg rect.errors").count() == 1
        sign_ins = page.locator("tr[data-grant]")
        assert await sign_ins.count() == 1
        assert storage.client_info.client_id in await sign_ins.first.inner_text()
        assert "—" not in await sign_ins.first.locator("td").nth(3).inner_text()  # last used: just now

        await sign_ins.first.locator("button.end").click()
        await page.wait_for_selector("[role=status]")
        assert "ended" in await page.inner_text("[role=status]")
        assert await page.locator("tr[data-grant]").count() == 0

    refused = await tools_list(items, token)
    assert refused.status_code == 401
    assert "revoked" in refused.headers["www-authenticate"]
    # The upstream's grant was revoked too (RFC 7009 on its refresh token).
    assert len(stack.upstream.oauth._refresh) == upstream_refresh_tokens - 1


async def test_admin_actions_need_the_session_and_its_csrf_token(stack: Stack) -> None:
    async with httpx2.AsyncClient() as http:
        # No session: an action redirects to the login page; a login without the form's token is refused.
        anonymous = await http.post(f"{stack.url}/admin/workspaces/items/sign-ins/end", data={"grant": "x"})
        assert anonymous.status_code == 303
        assert (await http.post(f"{stack.url}/admin/login", data={"key": ADMIN_KEY})).status_code == 403
        assert (await admin.sign_in(http, stack.url, ADMIN_KEY)).status_code == 303
        page = await http.get(f"{stack.url}/admin/workspaces/items")
        assert page.status_code == 200
        without = await http.post(f"{stack.url}/admin/logout", data={"csrf": "wrong"})
        assert without.status_code == 403
        cross_site = await http.post(f"{stack.url}/admin/logout", data={"csrf": admin.hidden(page.text, "csrf")},
                                     headers={"Origin": "https://evil.example"})
        assert cross_site.status_code == 403
        out = await http.post(f"{stack.url}/admin/logout", data={"csrf": admin.hidden(page.text, "csrf")},
                              headers={"Origin": stack.url})
        assert out.status_code == 303
        assert 'name="key"' in (await http.get(f"{stack.url}/admin")).text  # signed out


async def test_admin_page_is_off_without_server_admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2E_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    sock = free_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    upstream = start_oauth_upstream([url], CLIENT_SECRET)
    proxy = run(create_app(write_config(tmp_path, url, upstream.url), reload=False), sock)
    try:
        assert web.get(f"{url}/admin").status_code == 404
        assert web.post(f"{url}/admin/login", data={"key": "x"}).status_code == 404
    finally:
        proxy.stop()
        upstream.stop()
