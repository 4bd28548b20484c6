"""The tool-call pipeline (castproxy.serve.calls.ToolCaller) when the upstream answers 401 or 403.

Real parts throughout: the bundled test server on loopback (behind a wrapper that records every API
request and counts token requests), the real Forwarder, and UpstreamOAuth's credentials for a
`grant: client_credentials` workspace. A 401 renews the token once and re-sends the same request
once; a 403 and a static credential's 401 go back as they are; nothing is ever sent a third time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from types import MappingProxyType
from typing import Any

import pytest
from pydantic import SecretStr
from support.auth_server import bridge_credentials
from support.metrics import parse, value
from support.recording import RecordedUpstream, start_recorded

from castproxy.auth.static import static_credentials
from castproxy.auth.upstream_oauth import UpstreamOAuth
from castproxy.config.model import BearerAuth, OAuth2Auth
from castproxy.observe import AuditTrail, Observer
from castproxy.openapi.compiler import compile_spec
from castproxy.serve.calls import ToolCaller
from castproxy.serve.snapshot import ToolRuntime, WorkspaceRuntime
from castproxy.store.crypto import Cipher
from castproxy.store.sqlite import SQLiteStore
from castproxy.testserver.document import openapi_document
from castproxy.upstream.arguments import ArgumentValidator
from castproxy.upstream.forwarder import Forwarder

SECRET = "cs-canary-rejection-calls-8812"
CLIENT_ID = "test-client-id"


@pytest.fixture
def start_upstream() -> Iterator[Callable[..., RecordedUpstream]]:
    running: list[RecordedUpstream] = []

    def start(token_lifetime: int = 3600) -> RecordedUpstream:
        running.append(start_recorded("oauth", SECRET, token_lifetime=token_lifetime))
        return running[-1]

    yield start
    for upstream in running:
        upstream.stop()


def calls(caller: ToolCaller, workspace: str, tool: str, outcome: str) -> float | None:
    """castproxy_tool_calls_total for one series, as /metrics would show it."""
    samples = parse(caller.observer.metrics.render().decode())
    return value(samples, "castproxy_tool_calls_total", workspace=workspace, tool=tool, outcome=outcome)


@pytest.fixture
async def caller() -> AsyncIterator[ToolCaller]:
    forwarder = Forwarder()
    await forwarder.start()
    yield ToolCaller(forwarder, Observer(AuditTrail(None)))
    await forwarder.close()


@pytest.fixture
async def make_oauth(tmp_path: Any) -> AsyncIterator[Callable[..., UpstreamOAuth]]:
    store = SQLiteStore(tmp_path / "state.db")
    made: list[UpstreamOAuth] = []

    def make(upstream: RecordedUpstream, scopes: list[str]) -> UpstreamOAuth:
        auth = OAuth2Auth(
            type="oauth2",
            grant="client_credentials",
            token_url=f"{upstream.url}/auth/token",
            client_id=CLIENT_ID,
            client_secret=SecretStr(SECRET),
            scopes=scopes,
        )
        oauth = UpstreamOAuth("items", auth, store=store, cipher=Cipher.from_secret("c" * 40), callback_url="")
        made.append(oauth)
        return oauth

    yield make
    for oauth in made:
        await oauth.aclose()
    await store.close()


def workspace(upstream: RecordedUpstream, credentials: Any, oauth: OAuth2Auth | None) -> WorkspaceRuntime:
    compiled = compile_spec(openapi_document("oauth", upstream.url))
    tools = {tool.name: ToolRuntime(tool, ArgumentValidator(tool.input_schema)) for tool in compiled.tools}
    return WorkspaceRuntime(
        name="items",
        tools=MappingProxyType(tools),
        listing=MappingProxyType({}),
        base_url=upstream.url,
        credentials=credentials,
        timeout=10.0,
        max_response_bytes=1 << 20,
        extra_headers=MappingProxyType({}),
        protected_headers=frozenset(credentials.protected_headers),
        oauth=oauth,
    )


def oauth_workspace(upstream: RecordedUpstream, oauth: UpstreamOAuth) -> WorkspaceRuntime:
    return workspace(upstream, bridge_credentials(oauth), oauth.auth)


def text(result: Any) -> str:
    return " ".join(getattr(part, "text", "") for part in result.content)


async def test_401_renews_the_token_and_sends_the_call_once_more(
    start_upstream: Callable[..., RecordedUpstream], make_oauth: Callable[..., UpstreamOAuth], caller: ToolCaller
) -> None:
    upstream = start_upstream()
    ws = oauth_workspace(upstream, make_oauth(upstream, ["read:items"]))
    assert not (await caller.call(ws, "listItems", {}, None)).is_error
    refused = upstream.last_token()
    await upstream.revoke(refused)

    result = await caller.call(ws, "listItems", {}, None)
    assert not result.is_error, text(result)
    assert [sent.authorization for sent in upstream.recorder.sent[1:]] == [
        f"Bearer {refused}",
        f"Bearer {upstream.last_token()}",
    ]
    assert upstream.last_token() != refused
    assert upstream.recorder.grants["client_credentials"] == 2
    assert calls(caller, "items", "listItems", "ok") == 2


async def test_a_post_is_sent_again_with_the_same_body_and_runs_once(
    start_upstream: Callable[..., RecordedUpstream], make_oauth: Callable[..., UpstreamOAuth], caller: ToolCaller
) -> None:
    upstream = start_upstream()
    ws = oauth_workspace(upstream, make_oauth(upstream, ["read:items", "write:items"]))
    assert not (await caller.call(ws, "listItems", {}, None)).is_error
    await upstream.revoke(upstream.last_token())
    items_before = len(upstream.app.state.data.items)

    arguments = {"name": "lamp", "price": 12.5, "tags": ["desk"]}
    result = await caller.call(ws, "createItem", arguments, None)
    assert not result.is_error, text(result)
    assert result.structured_content is not None and result.structured_content["name"] == "lamp"
    posts = [sent for sent in upstream.recorder.sent if sent.method == "POST"]
    assert len(posts) == 2
    assert posts[0].body == posts[1].body and b'"lamp"' in posts[0].body
    assert posts[0].authorization != posts[1].authorization
    assert len(upstream.app.state.data.items) == items_before + 1  # the refused POST created nothing


async def test_403_goes_back_to_the_model_as_is(
    start_upstream: Callable[..., RecordedUpstream], make_oauth: Callable[..., UpstreamOAuth], caller: ToolCaller
) -> None:
    upstream = start_upstream()
    ws = oauth_workspace(upstream, make_oauth(upstream, ["read:items"]))  # no write:items
    result = await caller.call(ws, "createItem", {"name": "lamp"}, None)
    assert result.is_error
    assert text(result).startswith("Upstream answered 403") and "insufficient_scope" in text(result)
    assert len(upstream.recorder.sent) == 1
    assert upstream.recorder.grants["client_credentials"] == 1


async def test_a_token_refused_again_after_renewal_is_not_retried_twice(
    start_upstream: Callable[..., RecordedUpstream], make_oauth: Callable[..., UpstreamOAuth], caller: ToolCaller
) -> None:
    # Every token this upstream issues is already expired when it arrives (think of a skewed clock),
    # while its answer has no expires_in castproxy could go by: each one is refused.
    upstream = start_upstream(token_lifetime=0)
    ws = oauth_workspace(upstream, make_oauth(upstream, ["read:items"]))
    result = await caller.call(ws, "listItems", {}, None)
    assert result.is_error and text(result).startswith("Upstream answered 401"), text(result)
    assert len(upstream.recorder.sent) == 2  # the call and its one retry
    assert upstream.recorder.grants["client_credentials"] == 2
    await caller.call(ws, "listItems", {}, None)
    assert len(upstream.recorder.sent) == 4 and upstream.recorder.grants["client_credentials"] == 3
    assert calls(caller, "items", "listItems", "upstream_error") == 2


async def test_a_static_credential_refused_with_401_is_not_retried(
    start_upstream: Callable[..., RecordedUpstream], caller: ToolCaller
) -> None:
    upstream = start_upstream()
    credentials = static_credentials(BearerAuth(type="bearer", token=SecretStr("not-a-token-of-this-upstream")))
    result = await caller.call(workspace(upstream, credentials, None), "listItems", {}, None)
    assert result.is_error and text(result).startswith("Upstream answered 401")
    assert len(upstream.recorder.sent) == 1


async def test_a_failed_renewal_says_so_next_to_the_401(
    start_upstream: Callable[..., RecordedUpstream], make_oauth: Callable[..., UpstreamOAuth], caller: ToolCaller
) -> None:
    upstream = start_upstream()
    ws = oauth_workspace(upstream, make_oauth(upstream, ["read:items"]))
    assert not (await caller.call(ws, "listItems", {}, None)).is_error
    await upstream.revoke(upstream.last_token())
    upstream.app.state.oauth.clients[CLIENT_ID].client_secret = "rotated-at-the-upstream"
    result = await caller.call(ws, "listItems", {}, None)
    assert result.is_error
    assert text(result).startswith("Upstream answered 401")
    assert "could not renew the refused upstream token" in text(result) and "invalid_client" in text(result)
    assert SECRET not in text(result)
    assert len(upstream.recorder.sent) == 2  # nothing re-sent with the refused token
