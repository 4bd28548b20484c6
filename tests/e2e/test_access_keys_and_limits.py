"""Policies and rate limits for callers identified by named inbound keys, end to end with the `mcp` SDK client:
a tool limited to a group is absent from another key's tools/list and refused on call (fast path and SDK
path, list and search discovery); a burst over a per-caller limit is refused exactly beyond the limit, in one
process and across two proxy processes sharing Redis; /metrics counts the refusals.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from support.metrics import scrape, value
from support.net import free_socket
from support.recording import RecordedUpstream, start_recorded
from support.redis import REDIS_URL, require_redis
from support.serve_process import start_serve, stop_serve
from support.servers import run

from castproxy.serve.app import create_app

ADMIN_KEY = "admin-key-0123456789abcdef0123456789"
ENG_KEY = "eng-key-0123456789abcdef0123456789ab"
BARE_KEY = "bare-key-0123456789abcdef0123456789a"


def _workspace(upstream: str, *, discovery: str = "list", rate: str = "", admin: str = "admin-bot",
               eng: str = "eng-bot") -> str:
    return f"""    openapi: {upstream}/openapi.json
    base_url: {upstream}
    discovery: {discovery}
    inbound:
      api_keys:
        - {{name: {admin}, key: "${{env:ADMIN_KEY}}", groups: [admins]}}
        - {{name: {eng}, key: "${{env:ENG_KEY}}", groups: [eng]}}
        - "${{env:BARE_KEY}}"
{rate}    tools:
      - listItems
      - getItem
      - operation: createItem
        access: {{groups: [admins]}}
      - operation: deleteItem
        access: {{groups: [admins]}}
        rate_limit: {{per_caller: 2/hour}}
"""


@pytest.fixture
def upstream() -> Iterator[RecordedUpstream]:
    running = start_recorded("none", "unused-secret-0123456789")
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("ENG_KEY", ENG_KEY)
    monkeypatch.setenv("BARE_KEY", BARE_KEY)


def _serve(folder: Path, workspaces: str) -> tuple[object, str]:
    config = folder / "cast.yaml"
    config.write_text(f"version: 1\nstore: {{path: state.db}}\nworkspaces:\n{workspaces}")
    sock = free_socket()
    return run(create_app(config, reload=False), sock), f"http://127.0.0.1:{sock.getsockname()[1]}"


@asynccontextmanager
async def _client(url: str, key: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), cache=None) as client,
    ):
        yield client


def _text(result: object) -> str:
    return " ".join(getattr(part, "text", "") for part in getattr(result, "content", []))


@pytest.mark.parametrize("fast_path", ["on", "off"])
async def test_a_tool_limited_to_a_group_is_absent_and_refused_for_other_keys(
    tmp_path: Path, upstream: RecordedUpstream, monkeypatch: pytest.MonkeyPatch, fast_path: str
) -> None:
    monkeypatch.setenv("CASTPROXY_FAST_PATH", fast_path)
    proxy, url = _serve(tmp_path, "  items:\n" + _workspace(upstream.url))
    try:
        async with _client(f"{url}/mcp/items", ADMIN_KEY) as admin:
            assert {t.name for t in (await admin.list_tools()).tools} == {"listItems", "getItem", "createItem",
                                                                           "deleteItem"}
            assert not (await admin.call_tool("createItem", {"name": "by admin"})).is_error
        for key in (ENG_KEY, BARE_KEY):
            async with _client(f"{url}/mcp/items", key) as other:
                assert {t.name for t in (await other.list_tools()).tools} == {"listItems", "getItem"}
                refused = await other.call_tool("createItem", {"name": "by eng"})
                assert refused.is_error and "is not available to key" in _text(refused)
                assert not (await other.call_tool("listItems", {})).is_error
        assert [item["name"] for item in upstream.app.state.data.items.values()].count("by eng") == 0
    finally:
        proxy.stop()  # type: ignore[attr-defined]


async def test_search_discovery_respects_the_policy(tmp_path: Path, upstream: RecordedUpstream) -> None:
    proxy, url = _serve(tmp_path, "  items:\n" + _workspace(upstream.url, discovery="search"))
    try:
        async with _client(f"{url}/mcp/items", ENG_KEY) as eng:
            found = await eng.call_tool("search_operations", {"query": "create item"})
            assert "createItem" not in _text(found) and "listItems" in _text(found)
            described = await eng.call_tool("describe_operation", {"name": "createItem"})
            assert described.is_error and "not available" in _text(described)
            called = await eng.call_tool("call_operation", {"name": "createItem", "arguments": {"name": "x"}})
            assert called.is_error and "not available" in _text(called)
        async with _client(f"{url}/mcp/items", ADMIN_KEY) as admin:
            found = await admin.call_tool("search_operations", {"query": "create item"})
            assert "createItem" in _text(found)
            called = await admin.call_tool("call_operation", {"name": "createItem", "arguments": {"name": "y"}})
            assert not called.is_error, _text(called)
    finally:
        proxy.stop()  # type: ignore[attr-defined]


async def test_a_burst_over_the_per_caller_limit_is_refused_exactly_beyond_it(
    tmp_path: Path, upstream: RecordedUpstream
) -> None:
    rate = "    rate_limit: {per_caller: 5/hour, total: 8/hour}\n"
    proxy, url = _serve(tmp_path, "  items:\n" + _workspace(upstream.url, rate=rate))
    try:
        async with _client(f"{url}/mcp/items", ADMIN_KEY) as admin:
            results = [await admin.call_tool("listItems", {}) for _ in range(7)]
            assert [r.is_error for r in results] == [False] * 5 + [True] * 2
            assert "allows 5 per hour for you" in _text(results[5]) and "try again in" in _text(results[5])
        async with _client(f"{url}/mcp/items", ENG_KEY) as eng:  # its own 5, but only 3 left of the total 8
            results = [await eng.call_tool("listItems", {}) for _ in range(4)]
            assert [r.is_error for r in results] == [False] * 3 + [True]
            assert "for everyone together" in _text(results[3])
        metrics = scrape(url)
        assert value(metrics, "castproxy_rate_limited_total", workspace="items", scope="per_caller") == 2
        assert value(metrics, "castproxy_rate_limited_total", workspace="items", scope="total") == 1
        upstream_calls = [r for r in upstream.recorder.sent if r.method == "GET" and r.path == "/api/items"]
        assert len(upstream_calls) == 8  # refused calls never reached the upstream
    finally:
        proxy.stop()  # type: ignore[attr-defined]


async def test_a_tool_limit_applies_on_top_of_the_workspace(tmp_path: Path, upstream: RecordedUpstream) -> None:
    proxy, url = _serve(tmp_path, "  items:\n" + _workspace(upstream.url))
    try:
        async with _client(f"{url}/mcp/items", ADMIN_KEY) as admin:
            results = [await admin.call_tool("deleteItem", {"id": 999}) for _ in range(3)]
            assert "Rate limit reached: tool 'deleteItem' allows 2 per hour" in _text(results[2])
            assert "Rate limit" not in _text(results[1])
            assert not (await admin.call_tool("listItems", {})).is_error  # other tools are not limited
    finally:
        proxy.stop()  # type: ignore[attr-defined]


@pytest.mark.slow
async def test_two_proxy_processes_sharing_redis_share_the_limit(tmp_path: Path, upstream: RecordedUpstream) -> None:
    require_redis()
    name = f"bot-{secrets.token_hex(4)}"  # the limits' keys are per key name: fresh ones for this run
    rate = "    rate_limit: {per_caller: 6/hour}\n"
    config = tmp_path / "cast.yaml"
    config.write_text(f"version: 1\nstore: {{backend: redis, url: \"{REDIS_URL}\"}}\nworkspaces:\n  items:\n"
                      + _workspace(upstream.url, rate=rate, admin=name, eng=f"{name}-eng"))
    env = {"ADMIN_KEY": ADMIN_KEY, "ENG_KEY": ENG_KEY, "BARE_KEY": BARE_KEY}
    first, first_url = start_serve(config, env)
    second, second_url = start_serve(config, env)
    try:
        outcomes = []
        async with _client(f"{first_url}/mcp/items", ADMIN_KEY) as one, \
                _client(f"{second_url}/mcp/items", ADMIN_KEY) as two:
            for index in range(10):  # alternate between the replicas
                result = await (one if index % 2 == 0 else two).call_tool("listItems", {})
                outcomes.append(result.is_error)
        assert outcomes == [False] * 6 + [True] * 4
        for url in (first_url, second_url):
            assert value(scrape(url), "castproxy_rate_limited_total", workspace="items", scope="per_caller") == 2
    finally:
        stop_serve(first)
        stop_serve(second)
