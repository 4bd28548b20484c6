"""Issue 11, finding 7: slow clients cannot hold connections forever (`server.connections` in cast.yaml).

`castproxy serve` runs as an operator runs it, with short deadlines. Each slow client keeps sending (one
header line, or a few body bytes, every 0.2 s) and waits for the server to answer 408 and close; a
connection beyond `max_open` is answered 503 at once. Waiting is on the socket, bounded by a deadline.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from support import web
from support.serve_process import start_serve, stop_serve

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
MAX_OPEN = 20
PACE = 0.2  # the slow client sends something this often
DEADLINE = 8.0  # far beyond the timeouts; without them the connections would live until this runs out


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("slow")
    (folder / "spec.json").write_text(
        '{"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {"/x": {"get": '
        '{"operationId": "x", "responses": {"200": {"description": "ok"}}}}}}'
    )
    (folder / "cast.yaml").write_text(
        f"""version: 1
server:
  connections:
    header_timeout: {HEADER_TIMEOUT:g}s
    body_timeout: {int(BODY_TIMEOUT * 1000)}ms
    max_open: {MAX_OPEN}
store:
  path: state.db
workspaces:
  ws:
    openapi: spec.json
    base_url: http://127.0.0.1:9
    tools: [x]
"""
    )
    process, url = start_serve(folder / "cast.yaml", {})
    yield url
    stop_serve(process)


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _trickle_until_closed(sock: socket.socket, pieces: list[bytes]) -> tuple[float, bytes]:
    """Send one piece every PACE seconds (waiting on the socket meanwhile) until the server closes it;
    (seconds it took, what the server answered). Fails after DEADLINE."""
    started = time.monotonic()
    answer = b""
    sock.settimeout(PACE)
    for piece in pieces:
        try:
            sock.sendall(piece)
        except OSError:
            break
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        answer += chunk
        if not chunk or b"\r\n\r\n" in answer:
            break
        if time.monotonic() - started > DEADLINE:
            break
    else:
        raise AssertionError("the slow client was never cut off")
    return time.monotonic() - started, answer


def _lines(count: int) -> list[bytes]:
    return [b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n"] + [f"X-Slow-{n}: y\r\n".encode() for n in range(count)]


def test_a_client_trickling_header_lines_is_cut_off(proxy: str) -> None:
    with _connect(proxy) as sock:
        took, answer = _trickle_until_closed(sock, _lines(int(DEADLINE / PACE)))
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert HEADER_TIMEOUT * 0.9 <= took < HEADER_TIMEOUT + 3  # (clocks of client and server differ a little)


def test_a_client_sending_nothing_is_cut_off(proxy: str) -> None:
    with _connect(proxy) as sock:
        sock.settimeout(DEADLINE)
        started = time.monotonic()
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < HEADER_TIMEOUT + 3


def test_a_client_trickling_its_body_is_cut_off(proxy: str) -> None:
    head = b"POST /mcp/ws HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    with _connect(proxy) as sock:
        took, answer = _trickle_until_closed(sock, [head] + [b"          "] * int(DEADLINE / PACE))
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 ")
    assert BODY_TIMEOUT * 0.9 <= took < BODY_TIMEOUT + 3


def test_connections_beyond_the_cap_are_refused_and_ordinary_requests_still_work(proxy: str) -> None:
    held = [_connect(proxy) for _ in range(MAX_OPEN)]
    try:
        with _connect(proxy) as one_more:
            one_more.settimeout(HEADER_TIMEOUT / 2)  # answered before the held ones time out
            assert one_more.recv(4096).startswith(b"HTTP/1.1 503 ")
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + DEADLINE
    while True:  # the held connections are gone once the server noticed; then requests work again
        try:
            if web.get(f"{proxy}/healthz", timeout=2).status_code == 200:
                break
        except httpx2.TransportError:
            pass
        assert time.monotonic() < deadline, "the proxy did not answer again after the connections closed"


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_both_http_implementations_are_guarded(http: str) -> None:
    """uvicorn falls back to h11 without httptools: the deadlines hold there too."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from support.servers import run

    from castproxy.serve.connections import ConnectionLimits, GuardedConfig

    async def ok(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/healthz", ok)])
    limits = ConnectionLimits(header_timeout=HEADER_TIMEOUT, body_timeout=BODY_TIMEOUT, max_open=MAX_OPEN)
    server = run(app, config_class=GuardedConfig, http=http, connection_limits=limits)
    try:
        assert web.get(f"{server.url}/healthz").text == "ok"
        with _connect(server.url) as sock:
            took, answer = _trickle_until_closed(sock, _lines(int(DEADLINE / PACE)))
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert HEADER_TIMEOUT * 0.9 <= took < HEADER_TIMEOUT + 3  # (clocks of client and server differ a little)
    finally:
        server.stop()
