"""The two comparison servers of `serve_bench.py`, each run under uvicorn in its own process.

- `upstream`: the REST API every target calls in the end: `GET /items/{id}` answering a small JSON.
  A raw ASGI app, so the upstream costs as little as possible of the shared server core.
- `forwarder`: the bare forwarder baseline: a minimal Starlette endpoint that takes the JSON-RPC
  `tools/call` body, makes the same upstream call with one shared aiohttp session and answers a
  JSON-RPC result shaped like castproxy's (text + structuredContent). Everything castproxy does on
  top (MCP SDK dispatch, validation, request building, credentials, mapping, logs, metrics) is the
  difference between this and target (c).
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
