"""Issue 11, finding 9: the smaller holes, one test each.

- `/mcp/ws/` with a forged Host header was redirected (307) to that host: now it is served in place.
- state.db was created world-readable: now 0600, in a folder castproxy creates 0700.
- registration accepted `http://localhost:99999/cb`: a port must be 1-65535.
- /metrics was open to anyone: `server.metrics_token` protects it.
(The remembered consent of a loopback client across ports and loopback CORS are decisions, documented in
docs/security.md and pinned by test_sec_consent_memory.py and tests/serve; spec-declared Forwarded headers
are the compiler's, issue 10a.)
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from support.auth_server import Harness
from support.net import free_socket
from support.servers import Running, run

from castproxy.store.sqlite import SQLiteStore

SPEC = (
    '{"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {"/x": {"get": '
    '{"operationId": "x", "responses": {"200": {"description": "ok"}}}}}}'
)


@pytest.fixture
def proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    from castproxy.serve.app import create_app

    monkeypatch.setenv("METRICS_TOKEN", "metrics-token-0123456789")
    (tmp_path / "spec.json").write_text(SPEC)
    (tmp_path / "cast.yaml").write_text(
        """version: 1
server:
  metrics_token: ${env:METRICS_TOKEN}
store:
  path: state.db
workspaces:
  ws:
    openapi: spec.json
    base_url: http://127.0.0.1:9
    tools: [x]
"""
    )
    sock = free_socket()
    running = run(create_app(tmp_path / "cast.yaml", reload=False, port_override=sock.getsockname()[1]), sock)
    yield running
    running.stop()


async def test_a_trailing_slash_is_never_redirected_to_the_host_header(proxy: Running) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Host": "evil.example", "Accept": "application/json", "MCP-Protocol-Version": "2025-11-25"}
    async with httpx2.AsyncClient() as http:
        answer = await http.post(f"{proxy.url}/mcp/ws/", json=body, headers=headers)
        other = await http.get(f"{proxy.url}/healthz/", headers={"Host": "evil.example"})
    assert "evil.example" not in answer.headers.get("location", "")
    assert answer.status_code == 200, answer.text  # served in place, like /mcp/ws
    assert [tool["name"] for tool in answer.json()["result"]["tools"]] == ["x"]
    assert other.status_code == 404 and "location" not in other.headers


async def test_metrics_need_the_token_when_one_is_set(proxy: Running) -> None:
    async with httpx2.AsyncClient() as http:
        anonymous = await http.get(f"{proxy.url}/metrics")
        wrong = await http.get(f"{proxy.url}/metrics", headers={"Authorization": "Bearer nope"})
        right = await http.get(f"{proxy.url}/metrics", headers={"Authorization": "Bearer metrics-token-0123456789"})
    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert right.status_code == 200 and "castproxy_tool_calls_total" in right.text


async def test_the_store_file_and_its_folder_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a usual umask: files 0644, folders 0755 unless asked otherwise
    try:
        store = SQLiteStore(tmp_path / "new-folder" / "state.db")
        await store.put("ns", "k", b"v")
        async with store.lock("upstream-refresh:w:g"):  # its lock files (serve --workers) too
            pass
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE((tmp_path / "new-folder").stat().st_mode) == 0o700
        # state.db, its -wal/-shm files, and state.db.locks/ with its lock files
        for path in [*(tmp_path / "new-folder").iterdir(), *(tmp_path / "new-folder" / "state.db.locks").iterdir()]:
            assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path.name
    finally:
        await store.close()


async def test_an_existing_world_readable_store_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    store = SQLiteStore(path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        await store.close()


@pytest.mark.parametrize(
    "uri", ["http://localhost:99999/cb", "http://127.0.0.1:0/cb", "http://[::1]:65536/cb", "https://app.example:70000/cb"]
)
async def test_registration_refuses_an_invalid_port(as_harness: Harness, uri: str) -> None:
    response = await as_harness.http.post("/register", json={"redirect_uris": [uri]})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"
    assert "port" in response.json()["error_description"]
