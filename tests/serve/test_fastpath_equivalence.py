"""The tools/call and tools/list fast path answers exactly as the MCP SDK would: same status, headers and body bytes.

Two proxies serve the same config against one recording upstream: one with the fast path, one with
CASTPROXY_FAST_PATH=off (everything through the SDK's session manager). Every request goes to both;
the answers must match byte for byte, and the fast path's counter says which requests it answered
itself, so a fast path that silently declined everything (or took what it should not) fails too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import mcp_types
import pytest
from serve_support import MODERN, Upstream, config_text, run, write_spec
from support.net import free_socket
from support.servers import Running

from castproxy.serve.fastpath import ENV_SWITCH, FastPath, enabled_by_environment
from castproxy.serve.mcp_endpoint import McpEndpoint

LEGACY = "2025-11-25"
VERSIONS = (MODERN, LEGACY, "2025-06-18", None)  # None: no MCP-Protocol-Version header at all
IGNORED_HEADERS = {"date", "server"}


@dataclass
class Pair:
    fast: str
    sdk: str
    endpoint: McpEndpoint
    running: list[Running] = field(default_factory=list)


def _endpoint(app: Any) -> McpEndpoint:
    for route in app.routes:
        if isinstance(getattr(route, "app", None), McpEndpoint):
            return route.app
    raise AssertionError("no /mcp route")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    from castproxy.serve.app import create_app

    api = Upstream()
    upstream = run(api.app())
    started = [upstream]
    apps = {}
    for kind in ("fast", "sdk"):
        folder: Path = tmp_path_factory.mktemp(kind)
        write_spec(folder)
        config = folder / "cast.yaml"
        config.write_text(config_text(upstream.url, {"ws": "", "locked": "    inbound: {api_keys: [k1]}",
                                                     "find": "    tools: '*'\n    discovery: search"}))
        sock = free_socket()
        before = os.environ.get(ENV_SWITCH)
        os.environ[ENV_SWITCH] = "on" if kind == "fast" else "off"
        try:
            app = create_app(config, reload=False, port_override=sock.getsockname()[1])
        finally:
            if before is None:
                del os.environ[ENV_SWITCH]
            else:
                os.environ[ENV_SWITCH] = before
        started.append(run(app, sock))
        apps[kind] = app
    assert _endpoint(apps["sdk"]).fast_path is None
    endpoint = _endpoint(apps["fast"])
    assert endpoint.fast_path is not None
    yield Pair(started[1].url, started[2].url, endpoint, started)
    for running in started:
        running.stop()


def headers_for(version: str | None, method: str = "tools/call", name: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if version is not None:
        headers["MCP-Protocol-Version"] = version
    if version == MODERN:
        headers["Mcp-Method"] = method
        if name is not None:
            headers["Mcp-Name"] = name
    return headers


def envelope(version: str | None, params: dict[str, Any]) -> dict[str, Any]:
    if version != MODERN:
        return params
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
    return {**params, "_meta": meta}


def call(version: str | None, tool: Any, arguments: Any, request_id: Any = 1) -> tuple[dict[str, str], bytes]:
    params = envelope(version, {"name": tool, "arguments": arguments})
    body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
    return headers_for(version, name=str(tool)), json.dumps(body).encode()


def rpc(version: str | None, method: str, params: dict[str, Any] | None = None, request_id: Any = 6,
        ) -> tuple[dict[str, str], bytes]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        body["id"] = request_id
    if params is not None:
        body["params"] = envelope(version, params)
    return headers_for(version, method), json.dumps(body).encode()


@dataclass
class Case:
    label: str
    headers: dict[str, str] | list[tuple[str, str]]
    body: bytes
    fast: bool  # answered by the fast path (True) or passed to the SDK (False)
    method: str = "POST"
    workspace: str = "ws"
    chunked: bool = False


def cases(version: str | None) -> list[Case]:
    modern = version == MODERN
    ok_headers, ok_body = call(version, "getItem", {"id": "7"})
    out = [
        Case("valid call", ok_headers, ok_body, True),
        Case("string id", *call(version, "getItem", {"id": "7"}, request_id="req-1"), True),
        Case("non-ASCII argument and result", *call(version, "getItem", {"id": "é ü ☃"}), True),
        Case("bad arguments", *call(version, "listItems", {"limit": 0}), True),
        Case("missing required argument", *call(version, "getItem", {}), True),
        Case("unknown tool", *call(version, "noSuchTool", {}), True),
        Case("upstream 500", *call(version, "failHard", {}), True),
        Case("list result wrapped", *call(version, "listItems", {"limit": 2}), True),
        Case("arguments absent", headers_for(version, name="failHard"), json.dumps(
            {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": envelope(version, {"name": "failHard"})}
        ).encode(), True),
        Case("Accept */*", {**ok_headers, "Accept": "*/*"}, ok_body, True),
        Case("Content-Type with charset", {**ok_headers, "Content-Type": "application/json; charset=utf-8"},
             ok_body, True),
        Case("missing Accept", {k: v for k, v in ok_headers.items() if k != "Accept"}, ok_body, False),
        Case("Accept without JSON", {**ok_headers, "Accept": "text/html"}, ok_body, False),
        Case("chunked body (no Content-Length)", ok_headers, ok_body, False, chunked=True),
        Case("body over the SDK's 4 MiB limit", *call(version, "getItem", {"id": "x" * (4 * 2**20)}), False),
        Case("Accept SSE only", {**ok_headers, "Accept": "text/event-stream"}, ok_body, False),
        Case("Content-Type text/plain", {**ok_headers, "Content-Type": "text/plain"}, ok_body, False),
        Case("wrong protocol version", {**ok_headers, "MCP-Protocol-Version": "2024-01-01"}, ok_body, False),
        Case("session id", {**ok_headers, "Mcp-Session-Id": "abc"}, ok_body, False),
        Case("malformed JSON", ok_headers, b'{"jsonrpc": "2.0", "id": 1, "method": ', False),
        Case("batch", ok_headers, b"[" + ok_body + b"," + ok_body + b"]", False),
        Case("notification", *rpc(version, "notifications/initialized", {}, request_id=None), False),
        Case("ping", *rpc(version, "ping", {}), False),
        Case("tools/list", *rpc(version, "tools/list", {}), True),
        Case("tools/list again (cached)", *rpc(version, "tools/list", {}, request_id="list-ü"), True),
        Case("tools/list with a cursor", *rpc(version, "tools/list", {"cursor": "x"}), True),
        Case("tools/list without params", *rpc(version, "tools/list"), not modern),
        Case("tools/list, cursor not a string", *rpc(version, "tools/list", {"cursor": 5}), False),
        Case("tools/list, keyed workspace", {**rpc(version, "tools/list", {})[0], "X-API-Key": "k1"},
             rpc(version, "tools/list", {})[1], True, workspace="locked"),
        Case("unknown method", *rpc(version, "foo/bar", {}), False),
        Case("name not a string", *call(version, 123, {}), False),
        Case("arguments not an object", *call(version, "getItem", [1]), False),
        Case("bool id", *call(version, "getItem", {"id": "7"}, request_id=True), False),
        Case("null id", *call(version, "getItem", {"id": "7"}, request_id=None), False),
        Case("extra member", ok_headers, json.dumps(
            {**json.loads(ok_body), "extra": 1}).encode(), False),
        Case("GET", {"Accept": "application/json"}, b"", False, method="GET"),
        Case("DELETE", ok_headers, b"", False, method="DELETE"),
        Case("locked without key", ok_headers, ok_body, False, workspace="locked"),
        Case("locked with key", {**ok_headers, "X-API-Key": "k1"}, ok_body, True, workspace="locked"),
        Case("unknown workspace", ok_headers, ok_body, False, workspace="nope"),
        Case("foreign Origin", {**ok_headers, "Origin": "https://evil.example.net"}, ok_body, False),
        Case("allowed Origin (CORS)", {**ok_headers, "Origin": "http://localhost:3000"}, ok_body, True),
    ]
    out += [  # discovery: search, its meta-tools (castproxy/catalog)
        Case("search mode: tools/list", *rpc(version, "tools/list", {}), True, workspace="find"),
        Case("search mode: search", *call(version, "search_operations", {"query": "get one item"}), True,
             workspace="find"),
        Case("search mode: search, bad arguments", *call(version, "search_operations", {"limit": 5}), True,
             workspace="find"),
        Case("search mode: describe", *call(version, "describe_operation", {"name": "getItem"}), True,
             workspace="find"),
        Case("search mode: describe unknown", *call(version, "describe_operation", {"name": "nope"}), True,
             workspace="find"),
        Case("search mode: call", *call(version, "call_operation", {"name": "getItem", "arguments": {"id": "7"}}),
             True, workspace="find"),
        Case("search mode: call, bad arguments",
             *call(version, "call_operation", {"name": "listItems", "arguments": {"limit": 0}}), True,
             workspace="find"),
        Case("search mode: call unknown", *call(version, "call_operation", {"name": "getItems"}), True,
             workspace="find"),
        Case("search mode: direct call", *call(version, "getItem", {"id": "7"}), True, workspace="find"),
    ]
    if version is None:
        out.append(Case("initialize", headers_for(None, "initialize"), json.dumps({
            "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        ).encode(), False))
    if modern:
        out += [
            Case("Mcp-Name mismatch", {**ok_headers, "Mcp-Name": "listItems"}, ok_body, False),
            Case("Mcp-Method missing", {k: v for k, v in ok_headers.items() if k != "Mcp-Method"}, ok_body, False),
            Case("envelope missing", ok_headers, json.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "getItem"}}).encode(), False),
            Case("duplicated routing header", [*ok_headers.items(), ("Mcp-Method", "tools/call")], ok_body, False),
            Case("Mcp-Name base64", {**ok_headers, "Mcp-Name": "=?base64?Z2V0SXRlbQ==?="}, ok_body, True),
        ]
    return out


def _send(client: httpx2.Client, base: str, case: Case) -> httpx2.Response:
    content = iter([case.body]) if case.chunked else case.body
    return client.request(case.method, f"{base}/mcp/{case.workspace}", headers=case.headers, content=content)


def _client() -> httpx2.Client:
    client = httpx2.Client(timeout=30)
    del client.headers["accept"]  # only what each case sends
    return client


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v or "no-version-header")
def test_fast_path_answers_like_the_sdk(pair: Pair, version: str | None) -> None:
    fast_path = pair.endpoint.fast_path
    assert fast_path is not None
    mismatches = []
    with _client() as client:
        for case in cases(version):
            before = fast_path.answered
            fast = _send(client, pair.fast, case)
            took_fast_path = fast_path.answered > before
            sdk = _send(client, pair.sdk, case)
            fast_headers = [(k, v) for k, v in fast.headers.multi_items() if k not in IGNORED_HEADERS]
            sdk_headers = [(k, v) for k, v in sdk.headers.multi_items() if k not in IGNORED_HEADERS]
            if (fast.status_code, fast_headers, fast.content) != (sdk.status_code, sdk_headers, sdk.content):
                mismatches.append(f"{case.label}:\n  fast {fast.status_code} {fast_headers} {fast.content[:300]!r}"
                                  f"\n  sdk  {sdk.status_code} {sdk_headers} {sdk.content[:300]!r}")
            if took_fast_path != case.fast:
                mismatches.append(f"{case.label}: expected fast path {case.fast}, took it: {took_fast_path}")
    assert not mismatches, "\n".join(mismatches)


def test_tool_results_reach_the_client(pair: Pair) -> None:
    """The answers compared above are real tool results, not two identical errors."""
    with _client() as client:
        modern = _send(client, pair.fast, Case("", *call(MODERN, "getItem", {"id": "é"}), True)).json()
        legacy = _send(client, pair.fast, Case("", *call(LEGACY, "failHard", {}), True)).json()
    assert modern["result"]["structuredContent"] == {"id": "é", "name": "thing"}
    assert modern["result"]["resultType"] == "complete"
    assert modern["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "castproxy"
    assert legacy["result"]["isError"] is True and "500" in legacy["result"]["content"][0]["text"]
    assert "resultType" not in legacy["result"]


def test_search_mode_answers_are_real(pair: Pair) -> None:
    """The search-mode answers compared above are the meta-tools at work, not two identical errors."""
    with _client() as client:
        listed = _send(client, pair.fast, Case("", *rpc(LEGACY, "tools/list", {}), True, workspace="find")).json()
        called = _send(client, pair.fast, Case("", *call(MODERN, "call_operation", {
            "name": "getItem", "arguments": {"id": "7"}}), True, workspace="find")).json()
    assert [tool["name"] for tool in listed["result"]["tools"]] == [
        "search_operations", "describe_operation", "call_operation"]
    assert called["result"]["structuredContent"] == {"id": "7", "name": "thing"}


def test_unknown_tool_is_a_protocol_error_on_both_paths(pair: Pair) -> None:
    """MCP server/tools, Error Handling: JSON-RPC -32602, not an isError result, whichever path answers."""
    with _client() as client:
        for version in (MODERN, LEGACY):
            for base in (pair.fast, pair.sdk):
                unknown = _send(client, base, Case("", *call(version, "noSuchTool", {}), True)).json()
                assert unknown["error"] == {"code": -32602, "message": "Unknown tool: noSuchTool"}, (version, base)


def test_listing_answer_follows_the_snapshot() -> None:
    """tools/list answers are cached per listing object: a reload's new listing is never answered from the old."""
    from types import MappingProxyType

    from castproxy.serve.mcp_endpoint import build_server

    server = build_server(None)  # type: ignore[arg-type]
    fast = FastPath(server, server.caller)
    def listing(*names: str) -> MappingProxyType[str, Any]:  # the wire form, as the snapshot builds it
        tools = [mcp_types.Tool(name=name, input_schema={"type": "object"}) for name in names]
        return MappingProxyType(mcp_types.ListToolsResult(tools=tools).model_dump(
            by_alias=True, mode="json", exclude_none=True))

    tool = {"name": "t", "inputSchema": {"type": "object"}}
    before, after = listing("t"), listing("t", "u")
    assert json.loads(fast._listing(before, LEGACY, False))["tools"] == [tool]
    assert fast._listing(before, LEGACY, False) is fast._listing(before, LEGACY, False)
    assert [t["name"] for t in json.loads(fast._listing(after, LEGACY, False))["tools"]] == ["t", "u"]
    assert json.loads(fast._listing(after, MODERN, True))["resultType"] == "complete"


def test_switch() -> None:
    assert enabled_by_environment({})
    assert enabled_by_environment({ENV_SWITCH: "on"})
    for value in ("off", "0", "false", "OFF "):
        assert not enabled_by_environment({ENV_SWITCH: value})


def test_servers_with_middleware_are_left_to_the_sdk() -> None:
    from mcp.server import Server

    from castproxy.serve.mcp_endpoint import build_server

    assert not FastPath(Server("plain"), None).usable  # type: ignore[arg-type]  # default telemetry middleware
    server = build_server(None)  # type: ignore[arg-type]
    assert FastPath(server, server.caller).usable
    server.middleware = [lambda ctx, call_next: call_next(ctx)]  # type: ignore[list-item]
    assert not FastPath(server, server.caller).usable

