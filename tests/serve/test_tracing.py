"""OpenTelemetry traces: a server span per MCP request (MCP semantic conventions), a client span per upstream
call, traceparent sent upstream, an incoming trace continued, on the fast path and through the SDK.

Spans go to the SDK's in-memory exporter through a TracerProvider handed to create_app; the upstream
records the headers it received. With the OTEL_* environment empty, the SDK is never imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from serve_support import MODERN, Upstream, config_text, mcp_client, run, write_spec
from support import web
from support.net import free_socket
from support.servers import Running

from castproxy.observe import tracing

INCOMING_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{INCOMING_TRACE}-{INCOMING_SPAN}-01"
META_TRACE = "0af7651916cd43dd8448eb211c80319c"
META_SPAN = "b7ad6b7169203331"
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


class Traced:
    def __init__(self, url: str, exporter: InMemorySpanExporter, api: Upstream) -> None:
        self.url = url
        self.exporter = exporter
        self.api = api

    def mcp(self, workspace: str = "open") -> str:
        return f"{self.url}/mcp/{workspace}"

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def server(self) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.kind == SpanKind.SERVER]

    def clients(self) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.kind == SpanKind.CLIENT]


@pytest.fixture
def traced(tmp_path: Path, upstream: tuple[Upstream, str]) -> Iterator[Callable[..., Traced]]:
    started: list[Running] = []

    def start(*, fast_path: bool = True) -> Traced:
        from castproxy.serve.app import create_app

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        write_spec(tmp_path)
        config = tmp_path / "cast.yaml"
        config.write_text(config_text(upstream[1], {"open": ""}, extra_server="  audit: {sink: off}\n"))
        sock = free_socket()
        saved = os.environ.get("CASTPROXY_FAST_PATH")
        os.environ["CASTPROXY_FAST_PATH"] = "on" if fast_path else "off"
        try:
            app = create_app(config, reload=False, port_override=sock.getsockname()[1], tracer_provider=provider)
        finally:
            if saved is None:
                os.environ.pop("CASTPROXY_FAST_PATH")
            else:
                os.environ["CASTPROXY_FAST_PATH"] = saved
        running = run(app, sock)
        started.append(running)
        return Traced(running.url, exporter, upstream[0])

    yield start
    for running in started:
        running.stop()


def call(name: str, arguments: dict[str, Any], *, meta: dict[str, Any] | None = None, request_id: int = 7) -> dict:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if meta is not None:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def hex_id(value: int, width: int) -> str:
    return format(value, f"0{width}x")


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "sdk"])
async def test_tool_call_is_a_server_span_with_an_upstream_client_span_and_traceparent_sent(
    traced: Callable[..., Traced], fast_path: bool
) -> None:
    proxy = traced(fast_path=fast_path)
    answer = web.post(proxy.mcp(), json=call("getItem", {"id": "42"}),
                      headers={**ACCEPT, "MCP-Protocol-Version": "2025-11-25", "traceparent": TRACEPARENT})
    assert answer.status_code == 200 and answer.json()["result"]["isError"] is False
    [server] = proxy.server()
    [client] = proxy.clients()

    assert server.name == "tools/call getItem"
    attributes = dict(server.attributes or {})
    assert attributes["mcp.method.name"] == "tools/call"
    assert attributes["gen_ai.tool.name"] == "getItem"
    assert attributes["gen_ai.operation.name"] == "execute_tool"
    assert attributes["jsonrpc.request.id"] == "7"
    assert attributes["mcp.protocol.version"] == "2025-11-25"
    assert attributes["network.transport"] == "tcp" and attributes["network.protocol.name"] == "http"
    assert attributes["client.address"] == "127.0.0.1" and attributes["server.port"] > 0
    assert attributes["castproxy.outcome"] == "ok"
    assert "error.type" not in attributes and server.status.status_code != StatusCode.ERROR
    assert "mcp.session.id" not in attributes  # stateless: there is no session
    # The incoming traceparent header is continued.
    assert hex_id(server.context.trace_id, 32) == INCOMING_TRACE
    assert server.parent is not None and hex_id(server.parent.span_id, 16) == INCOMING_SPAN

    assert client.name == "GET"
    assert client.parent is not None and client.parent.span_id == server.context.span_id
    assert client.context.trace_id == server.context.trace_id
    client_attributes = dict(client.attributes or {})
    assert client_attributes["http.request.method"] == "GET"
    assert client_attributes["http.response.status_code"] == 200
    assert client_attributes["server.address"] == "127.0.0.1"
    assert client_attributes["url.full"].endswith("/api/items/42")
    # The upstream got a W3C traceparent naming the client span as its parent.
    [seen] = proxy.api.seen
    version, trace_id, parent_id, flags = seen.headers["traceparent"].split("-")
    assert (version, trace_id, parent_id, flags) == ("00", INCOMING_TRACE, hex_id(client.context.span_id, 16), "01")


async def test_meta_traceparent_is_the_parent_and_the_http_one_a_link(traced: Callable[..., Traced]) -> None:
    proxy = traced()
    meta = {"traceparent": f"00-{META_TRACE}-{META_SPAN}-01",
            "io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
    answer = web.post(proxy.mcp(), json=call("listItems", {"limit": 2}, meta=meta),
                      headers={**ACCEPT, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call",
                                  "Mcp-Name": "listItems", "traceparent": TRACEPARENT})
    assert answer.status_code == 200, answer.text
    [server] = proxy.server()
    assert hex_id(server.context.trace_id, 32) == META_TRACE
    assert server.parent is not None and hex_id(server.parent.span_id, 16) == META_SPAN
    assert [hex_id(link.context.span_id, 16) for link in server.links] == [INCOMING_SPAN]
    assert dict(server.attributes or {})["mcp.protocol.version"] == MODERN
    [client] = proxy.clients()
    assert dict(client.attributes or {})["url.full"].endswith("/api/items?limit=REDACTED")  # argument values
    assert proxy.api.seen[0].headers["traceparent"].split("-")[1] == META_TRACE


async def test_failures_set_error_type(traced: Callable[..., Traced]) -> None:
    proxy = traced()
    headers = {**ACCEPT, "MCP-Protocol-Version": "2025-11-25"}
    assert web.post(proxy.mcp(), json=call("failHard", {}), headers=headers).json()["result"]["isError"]
    unknown = web.post(proxy.mcp(), json=call("dropTables", {}, request_id=8), headers=headers).json()
    assert unknown["error"]["code"] == -32602
    missing = web.post(proxy.mcp("nowhere"), json=call("getItem", {"id": "1"}), headers=headers)
    assert missing.status_code == 404
    failed, unknown_span, refused = proxy.server()
    assert dict(failed.attributes or {})["error.type"] == "tool_error"
    assert failed.status.status_code == StatusCode.ERROR
    [upstream] = proxy.clients()
    assert dict(upstream.attributes or {})["error.type"] == "500"
    assert dict(unknown_span.attributes or {})["error.type"] == "-32602"
    assert unknown_span.status.description == "Unknown tool: dropTables"
    assert dict(refused.attributes or {})["error.type"] == "404"


async def test_sdk_requests_are_spans_too(traced: Callable[..., Traced]) -> None:
    proxy = traced()
    async with mcp_client(proxy.mcp(), "legacy") as client:  # initialize, initialized, tools/list
        await client.list_tools()
    names = [span.name for span in proxy.server()]
    assert names[0] == "initialize" and "tools/list" in names
    assert dict(proxy.server()[0].attributes or {})["mcp.method.name"] == "initialize"


@pytest.mark.slow
def test_tracing_is_off_without_otel_environment_and_the_sdk_is_not_imported(tmp_path: Path) -> None:
    assert not tracing.wanted({})
    assert not tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"})
    assert not tracing.wanted({"OTEL_TRACES_EXPORTER": "none"})
    assert tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "otlp"})
    write_spec(tmp_path)
    config = tmp_path / "cast.yaml"
    config.write_text(config_text("http://127.0.0.1:9", {"open": ""}))
    script = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from castproxy.serve.app import create_app\n"
        f"app = create_app(Path({str(config)!r}), reload=False)\n"
        "print(json.dumps({'sdk': any(m.startswith('opentelemetry.sdk') for m in sys.modules),\n"
        "                  'tracing': app.state.observer.tracing is not None}))\n"
    )
    environ = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", script], env=environ, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.splitlines()[-1]) == {"sdk": False, "tracing": False}
    on = subprocess.run([sys.executable, "-c", script], env={**environ, "OTEL_TRACES_EXPORTER": "console"},
                        capture_output=True, text=True, check=True)
    assert json.loads(on.stdout.splitlines()[-1]) == {"sdk": True, "tracing": True}
