"""The admin page over plain HTTP (the browser test drives it in Chromium): sign in, read a page, end a sign-in."""

from __future__ import annotations

import re

import httpx2


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, f"no hidden field {name} in the page"
    return found.group(1)


async def sign_in(http: httpx2.AsyncClient, base_url: str, key: str) -> httpx2.Response:
    """GET /admin (the login form and its cookie), then POST the key with the form's CSRF token."""
    page = await http.get(f"{base_url}/admin")
    assert page.status_code == 200 and 'name="key"' in page.text, page.text[:500]
    return await http.post(f"{base_url}/admin/login", data={"key": key, "csrf": hidden(page.text, "csrf")},
                           headers={"Origin": base_url})


def grant_refs(html: str) -> list[str]:
    return re.findall(r'data-grant="([0-9a-f]{12})"', html)


async def end_sign_in(http: httpx2.AsyncClient, base_url: str, workspace: str, ref: str) -> httpx2.Response:
    page = await http.get(f"{base_url}/admin/workspaces/{workspace}")
    return await http.post(f"{base_url}/admin/workspaces/{workspace}/sign-ins/end",
                           data={"grant": ref, "csrf": hidden(page.text, "csrf")}, headers={"Origin": base_url})
