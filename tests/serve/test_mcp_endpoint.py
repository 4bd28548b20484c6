"""`/mcp/{workspace}` end to end: real uvicorn servers, the real MCP client, both protocol modes."""

from __future__ import annotations

import json
import logging

import httpx2
import pytest
from mcp.shared.exceptions import MCPError
from serve_support import ALL_TOOLS, MODERN, MODES, mcp_client

pytestmark = pytest.mark.parametrize("mode", MODES)

OPEN = {"open": ""}


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if getattr(block, "text", None))


def call_records(proxy) -> list[dict]:
    """The proxy's audit records of tool calls, oldest first (the per-call record; see castproxy.observe)."""
    return [record for record in proxy.app.state.observer.audit.recent if record["event"] == "tool_call"]


async def test_lists_the_configured_tools(start_proxy, mode):
    proxy = start_proxy({"open": "    tools: [listItems, getItem, {operation: createItem, name: add_item}]"})
    async with mcp_client(proxy.mcp("open"), mode) as client:
        tools = (await client.list_tools()).tools
    assert [tool.name for tool in tools] == ["listItems", "getItem", "add_item"]
    assert tools[1].input_schema["required"] == ["id"]


async def test_calls_reach_the_upstream_and_map_json(start_proxy, upstream, mode):
    api, _ = upstream
    proxy = start_proxy(OPEN)
    async with mcp_client(proxy.mcp("open"), mode) as client:
        listed = await client.call_tool("listItems", {"limit": 5})
        got = await client.call_tool("getItem", {"id": "a b"})
        created = await client.call_tool("createItem", {"name": "new"})
    assert not listed.is_error
    assert listed.structured_content == {"result": [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}]}
    assert got.structured_content == {"id": "a b", "name": "thing"}
    assert created.structured_content == {"created": {"name": "new"}}
    assert [(s.method, s.path, s.query) for s in api.seen] == [
        ("GET", "/api/items", "limit=5"), ("GET", "/api/items/a b", ""), ("POST", "/api/items", "")]
    assert json.loads(api.seen[2].body) == {"name": "new"}


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ("{type: none}", {"authorization": None, "x-api-key": None, "x-tenant": None}),
        ('{type: bearer, token: "${env:TEST_TOKEN}"}', {"authorization": "Bearer tok-123"}),
        ('{type: api_key, header: X-Api-Key, value: "${env:TEST_KEY}"}', {"x-api-key": "key-456"}),
        ('{type: headers, headers: {X-Tenant: acme, X-Api-Key: "${env:TEST_KEY}"}}',
         {"x-tenant": "acme", "x-api-key": "key-456"}),
    ],
    ids=["none", "bearer", "api_key", "headers"],
)
async def test_static_auth_reaches_the_upstream(start_proxy, upstream, mode, auth, expected):
    api, _ = upstream
    proxy = start_proxy({"api": f"    auth: {auth}"})
    async with mcp_client(proxy.mcp("api"), mode) as client:
        result = await client.call_tool("whoami", {})
    assert not result.is_error, text_of(result)
    sent = api.seen[-1].headers
    assert {name: sent.get(name) for name in expected} == expected
    # What the upstream echoed back: credentials of 8 characters or more are masked (upstream/redact.py).
    shown = {name: ("[redacted]" if value and len(value) >= 8 else value) for name, value in expected.items()}
    # ("Bearer tok-123": the token alone is under 8 characters, so the whole value is the masked form)
    assert result.structured_content.items() >= shown.items()
    assert "tok-123" not in str(result.content)


async def test_inbound_keys_are_enforced(start_proxy, mode):
    proxy = start_proxy({"keyed": '    inbound: {api_keys: ["${env:MCP_KEY}", other-key]}'})
    url = proxy.mcp("keyed")
    async with httpx2.AsyncClient() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "inbound-78"}):
            response = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                       headers={"Accept": "application/json, text/event-stream", **headers})
            assert response.status_code == 401
            assert "API key" in response.json()["message"]
    for headers in ({"Authorization": "Bearer inbound-789"}, {"X-API-Key": "other-key"}):
        async with mcp_client(url, mode, headers) as client:
            assert len((await client.list_tools()).tools) == len(ALL_TOOLS)


async def test_bad_arguments_are_tool_errors_naming_them(start_proxy, upstream, mode):
    api, _ = upstream
    proxy = start_proxy(OPEN)
    async with mcp_client(proxy.mcp("open"), mode) as client:
        wrong_type = await client.call_tool("listItems", {"limit": "many"})
        missing = await client.call_tool("getItem", {})
    assert wrong_type.is_error and "limit" in text_of(wrong_type)
    assert missing.is_error and "id" in text_of(missing)
    assert api.seen == []


async def test_unknown_tool_is_a_protocol_error(start_proxy, upstream, mode):
    """MCP server/tools, Error Handling: an unknown tool is JSON-RPC -32602, not a tool result."""
    api, _ = upstream
    proxy = start_proxy(OPEN)
    async with mcp_client(proxy.mcp("open"), mode) as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool("dropTables", {})
    assert (raised.value.code, raised.value.message) == (-32602, "Unknown tool: dropTables")
    assert "Traceback" not in str(raised.value.data or "")
    assert api.seen == []
    [line] = call_records(proxy)
    assert (line["tool"], line["outcome"], line["upstream_status"]) == ("dropTables", "unknown_tool", None)


async def test_upstream_failure_is_a_tool_error_naming_the_status(start_proxy, mode):
    proxy = start_proxy(OPEN)
    async with mcp_client(proxy.mcp("open"), mode) as client:
        result = await client.call_tool("failHard", {})
    assert result.is_error
    assert "500" in text_of(result)
    assert "Traceback" not in text_of(result)


async def test_unreachable_upstream_is_a_tool_error(start_proxy, mode):
    proxy = start_proxy({"gone": "    base_url: http://127.0.0.1:9"})
    async with mcp_client(proxy.mcp("gone"), mode) as client:
        result = await client.call_tool("getItem", {"id": "1"})
    assert result.is_error
    assert text_of(result) and "Traceback" not in text_of(result)
    [line] = call_records(proxy)
    assert line["outcome"].startswith("upstream_") and line["upstream_status"] is None


async def test_one_record_and_debug_line_per_call_without_argument_values(start_proxy, mode, caplog):
    proxy = start_proxy(OPEN)
    with caplog.at_level(logging.DEBUG, logger="castproxy.calls"):
        async with mcp_client(proxy.mcp("open"), mode) as client:
            await client.call_tool("getItem", {"id": "secret-looking-value"})
            await client.call_tool("failHard", {})
    fields = call_records(proxy)
    assert [(f["tool"], f["upstream_status"], f["outcome"]) for f in fields] == [
        ("getItem", 200, "ok"), ("failHard", 500, "upstream_error")]
    assert all(f["workspace"] == "open" and f["duration_ms"] >= 0 for f in fields)
    item = b'{"id":"secret-looking-value","name":"thing"}'
    assert [f["bytes"] for f in fields] == [len(item), len(b"database on fire")]
    lines = [record.fields for record in caplog.records if record.name == "castproxy.calls"]
    assert [line["outcome"] for line in lines] == ["ok", "upstream_error"]  # the debug line, for --log-level debug
    assert "secret-looking-value" not in caplog.text and "secret-looking-value" not in str(fields)


async def test_raw_protocol_versions(start_proxy, mode):
    """Each era on the wire: initialize with both handshake versions, and a bare 2026-07-28 tools/call."""
    proxy = start_proxy(OPEN)
    accept = {"Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient() as http:
        if mode == "legacy":
            for version in ("2025-06-18", "2025-11-25"):
                init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
                response = await http.post(proxy.mcp("open"), json=init, headers=accept)
                assert response.json()["result"]["protocolVersion"] == version
                call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                        "params": {"name": "getItem", "arguments": {"id": "7"}}}
                response = await http.post(proxy.mcp("open"), json=call,
                                           headers={**accept, "MCP-Protocol-Version": version})
                assert response.json()["result"]["structuredContent"] == {"id": "7", "name": "thing"}
        else:
            call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": "getItem", "arguments": {"id": "7"},
                "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN,
                          "io.modelcontextprotocol/clientCapabilities": {}}}}
            response = await http.post(proxy.mcp("open"), json=call, headers={
                **accept, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "getItem"})
            assert response.status_code == 200, response.text
            assert response.json()["result"]["structuredContent"] == {"id": "7", "name": "thing"}
