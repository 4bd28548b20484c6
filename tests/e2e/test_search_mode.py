"""`discovery: search` end to end: `castproxy serve` in front of the bundled test server, the real MCP client.

tools/list shows the three meta-tools; search_operations finds operations by task, describe_operation
gives one's schema, and call_operation runs it through the same path as a direct tool: argument
validation, upstream auth, errors, the call's log line. An unknown (or excluded) operation is an
isError result naming close names, in both protocol modes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from support import web
from support.serve_process import start_serve, stop_serve

from castproxy.testserver.app import create_app as create_testserver
from castproxy.testserver.runner import run_in_thread

API_KEY = "search-upstream-key-0123456789"
INBOUND_KEY = "search-inbound-key"
META = ["search_operations", "describe_operation", "call_operation"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    """The proxy's URL, and its log once the module is done."""
    upstream = run_in_thread(create_testserver("apikey", api_key=API_KEY))
    folder: Path = tmp_path_factory.mktemp("search")
    config = folder / "cast.yaml"
    config.write_text(f"""version: 1
server:
  host: 127.0.0.1
store:
  path: state.db
workspaces:
  items:
    description: Items and users
    openapi: {upstream.url}/openapi.json
    base_url: {upstream.url}
    auth: {{type: api_key, header: X-API-Key, value: "${{env:SEARCH_UPSTREAM_KEY}}"}}
    inbound:
      api_keys: ["${{env:SEARCH_INBOUND_KEY}}"]
    tools: "*"
    exclude: [deleteItem]
    discovery: search
""")
    process, url = start_serve(config, {"SEARCH_UPSTREAM_KEY": API_KEY, "SEARCH_INBOUND_KEY": INBOUND_KEY})
    log: list[str] = []
    try:
        yield url, log
    finally:
        log.append(stop_serve(process))
        upstream.stop()


@asynccontextmanager
async def client(url: str, mode: str) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {INBOUND_KEY}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(f"{url}/mcp/items", http_client=http), mode=mode, cache=None) as session,
    ):
        yield session


def text_of(result: Any) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_search_mode_end_to_end(served: tuple[str, list[str]], mode: str) -> None:
    url, _ = served
    async with client(url, mode) as session:
        listed = (await session.list_tools()).tools
        assert [tool.name for tool in listed] == META
        assert "8 operations" in (listed[0].description or "")
        assert listed[2].input_schema["required"] == ["name"]

        found = await session.call_tool("search_operations", {"query": "add a new item", "limit": 3})
        assert not found.is_error, text_of(found)
        operations = found.structured_content["operations"]
        assert operations[0] == {"name": "createItem", "summary": "Create an item", "method": "POST",
                                 "path": "/api/items"}
        assert len(operations) <= 3
        assert json.loads(text_of(found)) == found.structured_content

        described = await session.call_tool("describe_operation", {"name": "listItems"})
        assert not described.is_error
        assert described.structured_content["method"] == "GET"
        assert "limit" in described.structured_content["input_schema"]["properties"]

        called = await session.call_tool("call_operation", {"name": "listItems", "arguments": {"limit": 2}})
        assert not called.is_error, text_of(called)
        assert len(called.structured_content["items"]) == 2
        direct = await session.call_tool("listItems", {"limit": 2})  # the same path, so the same answer
        assert direct.structured_content == called.structured_content

        invalid = await session.call_tool("call_operation", {"name": "listItems", "arguments": {"limit": 0}})
        assert invalid.is_error
        assert text_of(invalid).startswith("Invalid arguments for tool 'listItems':")

        unknown = await session.call_tool("call_operation", {"name": "listItemz", "arguments": {}})
        assert unknown.is_error
        assert text_of(unknown).startswith("Unknown operation 'listItemz'. Did you mean: listItems")
        assert "search_operations" in text_of(unknown)

        excluded = await session.call_tool("call_operation", {"name": "deleteItem", "arguments": {"id": "1"}})
        assert excluded.is_error and text_of(excluded).startswith("Unknown operation 'deleteItem'.")

        no_name = await session.call_tool("call_operation", {"arguments": {}})
        assert no_name.is_error
        assert text_of(no_name).startswith("Invalid arguments for tool 'call_operation':")
        assert "name" in text_of(no_name)

        nowhere = await session.call_tool("describe_operation", {"name": "fly"})
        assert nowhere.is_error and "Unknown operation 'fly'" in text_of(nowhere)


async def test_calls_through_call_operation_are_measured_like_direct_calls(served: tuple[str, list[str]]) -> None:
    """Metrics count a call through call_operation under the operation's name (makes its own calls:
    the module's server may be this test's alone when tests are spread over workers)."""
    url, _ = served
    async with client(url, "legacy") as session:
        assert not (await session.call_tool("search_operations", {"query": "list items"})).is_error
        assert not (await session.call_tool("call_operation", {"name": "listItems", "arguments": {}})).is_error
    metrics = web.get(f"{url}/metrics").text
    assert 'tool="listItems"' in metrics
    assert 'tool="search_operations"' in metrics
    assert API_KEY not in metrics and INBOUND_KEY not in metrics
