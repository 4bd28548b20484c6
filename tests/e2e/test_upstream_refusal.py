"""An upstream that refuses the sign-in says why, to the person and in the log.

The bundled test server requires PKCE; a workspace configured with `pkce: false` gets
`error=invalid_request&error_description=code_challenge is required (PKCE S256)` at castproxy's
callback. The browser then shows castproxy's error page with those words and a link that hands the
error to the MCP client; the log has the upstream's error and description (and no secret).
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx2
import pytest
from oauth_e2e_support import SECRET_KEY, OAuthStack, start_oauth_stack
from support.oauth_client import CLIENT_REDIRECT, query_of

from castproxy.auth.upstream_oauth import SignInRefused, safe_description

CLIENT_SECRET = "e2e-upstream-client-secret-refusal-77"
NO_PKCE = """  strict:
    openapi: {upstream}/openapi.json
    base_url: {upstream}
    auth:
      type: oauth2
      authorization_url: {upstream}/auth/authorize
      token_url: {upstream}/auth/token
      client_id: test-client-id
      client_secret: ${{env:E2E_CLIENT_SECRET}}
      scopes: [read:items]
      pkce: false
    tools: [listItems]
"""


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OAuthStack]:
    monkeypatch.setenv("E2E_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    stack = start_oauth_stack(tmp_path, CLIENT_SECRET, more_workspaces=NO_PKCE)
    yield stack
    stack.stop()


async def _sign_in_until_the_callback(proxy: str, browser: httpx2.AsyncClient) -> httpx2.Response:
    """Register an MCP client, approve castproxy's consent page, follow the upstream; the callback's answer."""
    registered = await browser.post(f"{proxy}/register", json={
        "redirect_uris": [CLIENT_REDIRECT], "client_name": "refusal test", "token_endpoint_auth_method": "none"})
    assert registered.status_code == 201, registered.text
    challenge = base64.urlsafe_b64encode(hashlib.sha256(secrets.token_bytes(32)).digest()).decode().rstrip("=")
    page = await browser.get(f"{proxy}/authorize", params={
        "response_type": "code", "client_id": registered.json()["client_id"], "redirect_uri": CLIENT_REDIRECT,
        "state": "client-state", "code_challenge": challenge, "code_challenge_method": "S256",
        "resource": f"{proxy}/mcp/strict"})
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'name="(request_id|csrf_token)" value="([^"]*)"', page.text))
    answer = await browser.post(f"{proxy}/authorize/consent", data={**fields, "decision": "approve"},
                                headers={"Origin": proxy})
    for _ in range(4):  # castproxy -> the upstream's authorize -> castproxy's callback
        assert answer.status_code in (302, 303), answer.text
        location = urljoin(str(answer.url), answer.headers["location"])
        answer = await browser.get(location)
        if location.startswith(f"{proxy}/oauth/callback"):
            assert "error=invalid_request" in location and "code_challenge+is+required" in location
            return answer
    raise AssertionError("the sign-in never reached castproxy's callback")


async def test_the_upstreams_refusal_is_shown_and_logged(stack: OAuthStack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    proxy = stack.proxy.url
    async with httpx2.AsyncClient(follow_redirects=False, timeout=15) as browser:
        callback = await _sign_in_until_the_callback(proxy, browser)
    assert callback.status_code == 400
    page = html.unescape(callback.text)
    assert "The upstream refused the sign-in" in page
    assert "The sign-in server of workspace strict answered: invalid_request: code_challenge is required " \
           "(PKCE S256)." in page
    back = re.search(r'<a href="([^"]+)">Return to the application</a>', callback.text)
    assert back is not None
    answer = query_of(html.unescape(back.group(1)))
    assert html.unescape(back.group(1)).startswith(CLIENT_REDIRECT)
    assert answer["state"] == "client-state" and answer["error"] == "access_denied"
    assert answer["error_description"] == ("upstream sign-in failed: The upstream refused the sign-in "
                                           "(invalid_request: code_challenge is required (PKCE S256)).")

    [logged] = [record for record in caplog.records if record.getMessage() == "the upstream refused the sign-in"]
    assert logged.levelno == logging.WARNING
    assert logged.fields == {"workspace": "strict", "upstream_error": "invalid_request",  # type: ignore[attr-defined]
                             "upstream_error_description": "code_challenge is required (PKCE S256)"}
    everything = " ".join(f"{record.getMessage()} {getattr(record, 'fields', '')}" for record in caplog.records)
    assert CLIENT_SECRET not in everything and SECRET_KEY not in everything


def test_the_upstreams_words_are_cut_to_what_rfc_6749_allows() -> None:
    """They reach a page, a redirect and a log line: printable ASCII without quotes or backslashes, 300 at most."""

    refused = SignInRefused("access_denied", safe_description('the user said "no"\n'))
    assert refused.description == "the user said ?no??" and str(refused) == (
        "The upstream refused the sign-in (access_denied: the user said ?no??).")
    assert safe_description("x" * 400).endswith("...") and len(safe_description("x" * 400)) == 300
