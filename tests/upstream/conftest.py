"""A real upstream on 127.0.0.1 (aiohttp web server, port 0) that records the raw requests it receives."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from support.net import free_port

from castproxy.upstream.forwarder import Forwarder


@dataclass
class Received:
    method: str
    raw_path: str  # path and query exactly as on the request line
    headers: list[tuple[str, str]]  # raw, in order, duplicates kept
    body: bytes
    peer: int  # the client's port: equal for requests on one kept-alive connection

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    @property
    def path(self) -> str:
        return self.raw_path.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.raw_path.split("?", 1)[1] if "?" in self.raw_path else ""


class Upstream:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.url = ""
        self._runner: web.ServerRunner | None = None

    @property
    def last(self) -> Received:
        return self.received[-1]

    async def _record(self, request: web.BaseRequest) -> None:
        self.received.append(
            Received(
                method=request.method,
                raw_path=request.raw_path,
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
                body=await request.read(),
                peer=request.transport.get_extra_info("peername")[1] if request.transport else 0,
            )
        )

    async def start(self) -> None:
        # A low-level server: no router, so no path is rejected or rewritten before it is recorded.
        self._runner = web.ServerRunner(web.Server(self._handle), access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        await self._record(request)
        if request.raw_path.startswith("/r/"):
            return await self._respond(request, request.path[3:])
        return web.json_response({"ok": True})

    async def _respond(self, request: web.BaseRequest, kind: str) -> web.StreamResponse:
        """Canned responses for the mapping tests, chosen by the path after /r/."""
        if kind == "object":
            return web.json_response({"id": 7, "name": "widget"})
        if kind == "array":
            return web.json_response([{"id": 1}, {"id": 2}])
        if kind == "scalar":
            return web.json_response(42)
        if kind == "problem-json":
            return web.Response(body=b'{"ok":1}', content_type="application/problem+json")
        if kind == "bad-json":
            return web.Response(body=b"{not json", content_type="application/json")
        if kind == "text":
            return web.Response(text="plain words ü", content_type="text/plain")
        if kind == "latin1":
            return web.Response(
                body="caf\xe9".encode("latin-1"), headers={"Content-Type": "text/plain; charset=latin-1"}
            )
        if kind == "binary":
            return web.Response(body=bytes(range(256)), content_type="application/pdf")
        if kind == "big-text":
            return web.Response(text="x" * 5000, content_type="text/plain")
        if kind == "big-json":
            return web.json_response({"items": ["y" * 100] * 100})
        if kind == "big-binary":
            return web.Response(body=b"\x00\x01" * 5000, content_type="image/png")
        if kind == "gzip-bomb":
            body = gzip.compress(b"0" * 2_000_000)
            return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})
        if kind == "empty":
            return web.Response(status=204)
        if kind == "not-found":
            return web.json_response({"error": "item 9 does not exist"}, status=404)
        if kind == "server-error":
            return web.Response(text="database exploded\n" + "trace line\n" * 200, status=500)
        if kind == "teapot-empty":
            return web.Response(status=503)
        if kind == "redirect":
            return web.Response(status=302, headers={"Location": "http://evil.example/steal"})
        if kind == "cookies":
            response = web.json_response({"ok": True})
            response.headers["Set-Cookie"] = "sid=secret; Path=/"
            response.headers["Keep-Alive"] = "timeout=5"
            response.headers["X-Custom"] = "kept"
            return response
        if kind == "sleep":
            await asyncio.sleep(float(request.query.get("s", "2")))
            return web.json_response({"late": True})
        if kind == "reset":
            assert request.transport is not None
            request.transport.close()
            await asyncio.sleep(0.1)
            return web.Response(text="never")
        return web.Response(status=404, text=f"no canned response {kind!r}")


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = Upstream()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def forwarder() -> AsyncIterator[Forwarder]:
    instance = Forwarder()
    await instance.start()
    yield instance
    await instance.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return free_port()


def decoded_json(body: bytes) -> object:
    return json.loads(body.decode())
