"""Issue 11, finding 2: a workspace's stored grants are bound to the upstream that issued them.

The operator points workspace `items` at another upstream (same name, new base_url / endpoints) and restarts.
The grant from the first upstream must never be sent anywhere: not its access token to the new base URL,
not its refresh token (nor the client secret with it) to the new token endpoint. It is dropped and the user
signs in again, at the new upstream. The new upstream is a recording test server: it logs every
Authorization header and token request it receives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from oauth_e2e_support import SECRET_KEY, OAuthStack, start_oauth_stack
from support.oauth_client import Browser, MemoryStorage, mcp_session
from support.recording import RecordedUpstream, start_recorded

CLIENT_SECRET = "e2e-upstream-client-secret-moved-0123456789"


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OAuthStack]:
    monkeypatch.setenv("E2E_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    stack = start_oauth_stack(tmp_path, CLIENT_SECRET)
    yield stack
    stack.stop()


@pytest.fixture
def other_upstream(stack: OAuthStack) -> Iterator[RecordedUpstream]:
    upstream = start_recorded(
        "oauth", CLIENT_SECRET, auto_approve=True, redirect_uris=[f"{stack.proxy.url}/oauth/callback"]
    )
    yield upstream
    upstream.stop()


def _text(result: object) -> str:
    return "".join(getattr(part, "text", "") for part in getattr(result, "content", []))


@pytest.mark.parametrize("moved", ["everything", "base_url", "token_url"])
async def test_a_grant_is_never_sent_to_a_new_upstream(
    stack: OAuthStack, other_upstream: RecordedUpstream, moved: str
) -> None:
    url = f"{stack.proxy.url}/mcp/items"
    storage, browser = MemoryStorage(), Browser()
    async with mcp_session(url, storage, browser) as client:
        assert not (await client.call_tool("listItems", {})).is_error
    old_token = stack.last_upstream_token()

    old, new = stack.upstream.url, other_upstream.url
    text = stack.config.read_text()
    if moved == "everything":
        text = text.replace(old, new)
    elif moved == "base_url":
        text = text.replace(f"base_url: {old}", f"base_url: {new}")
    else:
        text = text.replace(f"token_url: {old}", f"token_url: {new}")
    stack.config.write_text(text)
    stack.restart_proxy()

    async with mcp_session(url, storage, browser) as client:
        result = await client.call_tool("listItems", {})
        assert result.is_error
        assert "Sign-in required" in _text(result)
    # Nothing of the old grant went to the new upstream: no API call, no token request.
    assert other_upstream.recorder.seen == []
    assert sum(other_upstream.recorder.grants.values()) == 0
    # The old upstream did not get a refresh either (nothing was sent anywhere).
    assert stack.recorder.refreshes == 0

    if moved != "everything":
        return  # half-moved configs sign in at one upstream and call another: nothing more to see
    # The client's token was ended with the grant: it signs in again and works.
    async with mcp_session(url, storage, browser) as client:
        assert not (await client.call_tool("listItems", {})).is_error
    assert browser.sign_ins == 2
    assert all(old_token not in header for header in other_upstream.recorder.seen)
