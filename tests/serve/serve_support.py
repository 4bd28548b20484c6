"""Test helpers: a recording upstream API, uvicorn servers on loopback port 0, MCP clients in both modes."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from support import servers, web
from support.servers import Running

MODERN = "2026-07-28"
MODES = ("legacy", MODERN)


def run(app: Any, sock: socket.socket | None = None) -> Running:
    """Serve `app` with the production uvicorn settings in a background thread."""
    return servers.run(app, sock, loop="uvloop", http="httptools")


# --- the upstream API ----------------------------------------------------------------------------

@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    seen: list[Seen] = field(default_factory=list)
    slow_started: threading.Event = field(default_factory=threading.Event)  # set when /api/slow is called

    def app(self) -> Starlette:
        async def record(request: Request) -> None:
            self.seen.append(Seen(request.method, request.url.path, request.url.query,
                                  dict(request.headers), await request.body()))

        async def items(request: Request) -> Response:
            await record(request)
            if request.method == "POST":
                return JSONResponse({"created": json.loads(await request.body())}, status_code=201)
            return JSONResponse([{"id": 1, "name": "one"}, {"id": 2, "name": "two"}])

        async def item(request: Request) -> Response:
            await record(request)
            return JSONResponse({"id": request.path_params["id"], "name": "thing"})

        async def fail(request: Request) -> Response:
            await record(request)
            return PlainTextResponse("database on fire", status_code=500)

        async def slow(request: Request) -> Response:
            await record(request)
            self.slow_started.set()
            seconds = float(request.query_params.get("seconds", "1"))
            await asyncio.sleep(seconds)
            return JSONResponse({"slept": seconds})

        async def whoami(request: Request) -> Response:
            await record(request)
            return JSONResponse({h: request.headers.get(h) for h in ("authorization", "x-api-key", "x-tenant")})

        return Starlette(routes=[
            Route("/api/items", items, methods=["GET", "POST"]),
            Route("/api/items/{id}", item),
            Route("/api/fail", fail),
            Route("/api/slow", slow),
            Route("/api/whoami", whoami),
        ])


def _op(op_id: str, summary: str, **extra: Any) -> dict[str, Any]:
    return {"operationId": op_id, "summary": summary, "responses": {"200": {"description": "ok"}}, **extra}


SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Test API", "version": "1"},
    "paths": {
        "/api/items": {
            "get": _op("listItems", "List items",
                       parameters=[{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}}]),
            "post": _op("createItem", "Create an item", requestBody={"required": True, "content": {
                "application/json": {"schema": {"type": "object", "required": ["name"],
                                                "properties": {"name": {"type": "string"}}}}}}),
        },
        "/api/items/{id}": {"get": _op("getItem", "Get one item", parameters=[
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}])},
        "/api/fail": {"get": _op("failHard", "Always fails")},
        "/api/slow": {"get": _op("slow", "Answers late", parameters=[
            {"name": "seconds", "in": "query", "schema": {"type": "number"}}])},
        "/api/whoami": {"get": _op("whoami", "Echo the credentials received")},
    },
}

ALL_TOOLS = ["listItems", "createItem", "getItem", "failHard", "slow", "whoami"]


def write_spec(folder: Path, name: str = "spec.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(SPEC))
    return path


def config_text(upstream_url: str, workspaces: dict[str, str], *, extra_server: str = "") -> str:
    """A cast.yaml; `workspaces` maps name -> extra YAML lines (auth, inbound, tools...) indented 4."""
    blocks = []
    for name, extra in workspaces.items():
        body = extra if "tools:" in extra else extra + "\n    tools: [" + ", ".join(ALL_TOOLS) + "]"
        base = "" if "base_url:" in extra else f"    base_url: {upstream_url}\n"
        blocks.append(f"  {name}:\n    openapi: spec.json\n{base}{body.strip(chr(10))}\n")
    return "version: 1\nserver:\n  host: 127.0.0.1\n" + extra_server + "store:\n  path: state.db\nworkspaces:\n" + \
        "".join(blocks)


@asynccontextmanager
async def mcp_client(url: str, mode: str, headers: dict[str, str] | None = None) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers=headers or {}, timeout=30, verify=web.TLS) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode, cache=None) as client,
    ):
        yield client


async def wait_until(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> float:
    """Poll `check` (sync or async) until it returns truthy; returns the seconds it took."""
    started = time.monotonic()
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
