"""`castproxy lock` then `castproxy serve` (hot reload on) with `server.lock: enforce`, as separate processes:
the spec file changes under the running proxy, which keeps serving the reviewed tools, says so in
/readyz and logs the drift as JSON; `castproxy diff` and `lock --check` see the same change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from support import web
from support.serve_process import start_serve, stop_serve

from castproxy.testserver.app import create_app as create_testserver
from castproxy.testserver.runner import run_in_thread

pytestmark = pytest.mark.slow

API_KEY = "e2e-lock-upstream-key-0123456789"


@pytest.fixture(scope="module")
def testserver() -> Iterator[str]:
    server = run_in_thread(create_testserver("apikey", api_key=API_KEY))
    yield server.url
    server.stop()


def castproxy(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "E2E_LOCK_KEY"}  # lock and diff need no secret
    return subprocess.run([sys.executable, "-m", "castproxy", *args], capture_output=True, text=True, timeout=60,
                          env=environment)


async def list_item_arguments(url: str) -> dict:
    async with (
        httpx2.AsyncClient() as http,
        Client(streamable_http_client(f"{url}/mcp/items", http_client=http), mode="2026-07-28", cache=None) as client,
    ):
        tools = (await client.list_tools()).tools
    return {tool.name: tool.input_schema for tool in tools}


async def test_enforce_across_processes(tmp_path: Path, testserver: str) -> None:
    spec = web.get(f"{testserver}/openapi.json").json()
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    config = tmp_path / "cast.yaml"
    config.write_text(f"""version: 1
server:
  host: 127.0.0.1
  lock: enforce
store:
  path: state.db
workspaces:
  items:
    openapi: spec.json
    base_url: {testserver}
    auth: {{type: api_key, header: X-API-Key, value: "${{env:E2E_LOCK_KEY}}"}}
    tools: [listItems, getItem]
""")
    assert castproxy("lock", "-c", str(config)).returncode == 0
    process, url = start_serve(config, {"E2E_LOCK_KEY": API_KEY}, args=())
    try:
        assert "tag" in (await list_item_arguments(url))["listItems"]["properties"]
        # The upstream's spec drops the `tag` filter of listItems (a breaking change nobody reviewed).
        del spec["paths"]["/api/items"]["get"]["parameters"][1]
        (tmp_path / "spec.json.new").write_text(json.dumps(spec))
        os.replace(tmp_path / "spec.json.new", tmp_path / "spec.json")
        deadline = time.monotonic() + 10
        while (body := web.get(f"{url}/readyz").json())["lock"]["drifted"] != ["items"]:
            assert time.monotonic() < deadline, body
            time.sleep(0.05)
        assert body["lock"]["workspaces"]["items"] == {
            "state": "drifted", "serving": "reviewed", "changes": ["listItems: argument `tag` removed"]}
        assert "tag" in (await list_item_arguments(url))["listItems"]["properties"]
    finally:
        stderr = stop_serve(process)
    entries = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    drift = [entry for entry in entries if entry["logger"] == "castproxy.gitops.drift"]
    assert drift and drift[0]["workspace"] == "items" and drift[0]["mode"] == "enforce"
    assert drift[0]["changes"] == ["listItems: argument `tag` removed"]
    assert API_KEY not in stderr

    result = castproxy("diff", "-c", str(config))
    assert result.returncode == 1  # a fresh process, no git: the lock's digests say only that it changed
    assert "unknown       listItems: definition changed" in result.stdout
    assert castproxy("lock", "--check", "-c", str(config)).returncode == 1
