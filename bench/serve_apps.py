"""The two comparison servers of `serve_bench.py`, each run under uvicorn in its own process.

- `upstream`: the REST API every target calls in the end: `GET /items/{id}` answering a small JSON.
  A raw ASGI app, so the upstream costs as little as possible of the shared server core.
- `forwarder`: the bare forwarder baseline: a minimal Starlette endpoint that takes the JSON-RPC
  `tools/call` body, makes the same upstream call with one shared aiohttp session and answers a
  JSON-RPC result shaped like castproxy's (text + structuredContent). Everything castproxy does on
  top (MCP SDK dispatch, validation, request building, credentials, mapping, logs, metrics) is the
  difference between this and target (c).
- `pipeline`: the same endpoint, but validating, building, sending and mapping with castproxy.upstream.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from castproxy.openapi.model import Operation, ParameterSpec, ToolDefinition
from castproxy.upstream.arguments import ArgumentValidator
from castproxy.upstream.forwarder import Forwarder
from castproxy.upstream.request import build_request
from castproxy.upstream.response import to_tool_result

ITEM = b'{"id":1,"name":"widget"}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ITEM)).encode())]


async def upstream(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": ITEM})


UPSTREAM_URL = os.environ.get("SERVE_BENCH_UPSTREAM", "http://127.0.0.1:9")
_session: dict[str, aiohttp.ClientSession] = {}


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    _session["s"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
    yield
    await _session.pop("s").close()


async def _call(request: Request) -> JSONResponse:
    message = json.loads(await request.body())
    item = message["params"]["arguments"]["id"]
    async with _session["s"].get(f"{UPSTREAM_URL}/items/{item}") as response:
        text = await response.text()
    result = {"content": [{"type": "text", "text": text}], "structuredContent": json.loads(text), "isError": False}
    return JSONResponse({"jsonrpc": "2.0", "id": message["id"], "result": result})


forwarder = Starlette(routes=[Route("/mcp/{workspace}", _call, methods=["POST"])], lifespan=_lifespan)


# ---- (u) the bare forwarder, but through castproxy.upstream: validate, build, send, map -------------------
# The difference between (u) and (b) is what castproxy's request/response half costs; between (c) and (u),
# what the MCP SDK and the serving app cost.

_TOOL = ToolDefinition(
    name="getItem",
    operation_id="getItem",
    description="bench",
    input_schema={"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
    operation=Operation(method="GET", path="/items/{id}", parameters=(ParameterSpec("id", "path", "id", True),)),
)
_VALIDATOR = ArgumentValidator(_TOOL.input_schema)
_FORWARDER = Forwarder()


@asynccontextmanager
async def _pipeline_lifespan(app: Starlette) -> AsyncIterator[None]:
    await _FORWARDER.start()
    yield
    await _FORWARDER.close()


async def _pipeline_call(request: Request) -> JSONResponse:
    message = json.loads(await request.body())
    arguments = message["params"]["arguments"]
    problems = _VALIDATOR.errors(arguments)
    if problems:
        return JSONResponse({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32602, "message": problems[0]}})
    upstream_request = build_request(_TOOL, arguments, base_url=UPSTREAM_URL)
    outcome = await _FORWARDER.send(upstream_request, timeout=30, max_bytes=2**20)
    result = to_tool_result(outcome, max_bytes=2**20).model_dump(mode="json", by_alias=True, exclude_none=True)
    return JSONResponse({"jsonrpc": "2.0", "id": message["id"], "result": result})


pipeline = Starlette(routes=[Route("/mcp/{workspace}", _pipeline_call, methods=["POST"])], lifespan=_pipeline_lifespan)
