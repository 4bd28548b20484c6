"""`python -m castproxy serve` as a user runs it: the bundled test server upstream, the real MCP client.

Covers what only a real process shows: start-up with a bad config (FILE:LINE:COL, exit 1), serving
over uvicorn, SIGHUP reload with --no-reload, JSON log lines, clean exit on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import signal
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

API_KEY = "e2e-upstream-key-0123456789"
INBOUND_KEY = "e2e-inbound-key"


@pytest.fixture(scope="module")
def testserver() -> Iterator[str]:
    server = run_in_thread(create_testserver("apikey", api_key=API_KEY))
    yield server.url
    server.stop()


def write_config(folder: Path, upstream: str, tools: str) -> Path:
    (folder / "cast.yaml").write_text(
        f"""version: 1
server:
  host: 127.0.0.1
store:
  path: state.db
workspaces:
  items:
    openapi: {upstream}/openapi.json
    base_url: {upstream}
    auth:
      type: api_key
      header: X-API-Key
      value: ${{env:E2E_UPSTREAM_KEY}}
    inbound:
      api_keys:
        - ${{env:E2E_INBOUND_KEY}}
    tools: [{tools}]
"""
    )
    return folder / "cast.yaml"


def stop(process: subprocess.Popen[str]) -> str:
    stderr = stop_serve(process)
    # uvicorn shuts down gracefully, then re-raises the signal so the parent sees how the process ended.
    assert process.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stderr
    return stderr


async def tool_names(url: str, mode: str) -> list[str]:
    headers = {"Authorization": f"Bearer {INBOUND_KEY}"}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(f"{url}/mcp/items", http_client=http), mode=mode, cache=None) as client,
    ):
        return [tool.name for tool in (await client.list_tools()).tools]


def test_bad_config_at_start_prints_positions_and_exits_1(tmp_path):
    config = tmp_path / "cast.yaml"
    config.write_text("version: 1\nworkspaces:\n  items:\n    openapi: spec.json\n    tools: []\n    timeout: soon\n")
    result = subprocess.run([sys.executable, "-m", "castproxy", "serve", "-c", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines and all(re.match(rf"{re.escape(str(config))}:\d+:\d+: ", line) for line in lines), result.stderr
    assert "Traceback" not in result.stderr


def test_missing_operation_at_start_degrades_that_workspace_with_its_position(tmp_path, testserver):
    """A workspace that does not build is isolated (docs/operations.md); `validate` is what fails on it."""
    config = write_config(tmp_path, testserver, "listItems, listItemz")
    process, url = start_serve(config, {"E2E_UPSTREAM_KEY": API_KEY, "E2E_INBOUND_KEY": INBOUND_KEY})
    try:
        headers = {"Authorization": f"Bearer {INBOUND_KEY}", "Accept": "application/json"}
        answer = web.get(f"{url}/mcp/items", headers=headers)
        assert answer.status_code == 503 and "listItemz" in answer.json()["reason"]
        ready = web.get(f"{url}/readyz")
        assert ready.status_code == 503  # its only workspace serves nothing
        problems = ready.json()["workspaces"]["items"]["problems"]
        assert any(re.match(rf"{re.escape(str(config))}:17:\d+: .*listItemz", line) for line in problems), problems
    finally:
        stderr = stop(process)
    assert "workspace degraded" in stderr and "Traceback" not in stderr
    checked = subprocess.run([sys.executable, "-m", "castproxy", "validate", "-c", str(config)],
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, "E2E_UPSTREAM_KEY": API_KEY, "E2E_INBOUND_KEY": INBOUND_KEY})
    assert checked.returncode == 1
    assert re.search(rf"{re.escape(str(config))}:17:\d+: .*listItemz", checked.stdout + checked.stderr)


async def test_serves_calls_and_reloads_on_sighup(tmp_path, testserver):
    config = write_config(tmp_path, testserver, "listItems, getItem")
    process, url = start_serve(config, {"E2E_UPSTREAM_KEY": API_KEY, "E2E_INBOUND_KEY": INBOUND_KEY},
                               args=("--no-reload", "--log-level", "debug"))  # debug: the line per tool call
    try:
        assert await tool_names(url, "legacy") == ["listItems", "getItem"]
        headers = {"Authorization": f"Bearer {INBOUND_KEY}"}
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(f"{url}/mcp/items", http_client=http), mode="2026-07-28",
                   cache=None) as client,
        ):
            result = await client.call_tool("listItems", {"limit": 2})
        assert not result.is_error, result.content
        assert len(result.structured_content["items"]) == 2

        # --no-reload: edits are applied on SIGHUP only (the log below shows one reload per signal, no other).
        for tools in (["listItems", "getItem", "listUsers"], ["listItems", "listUsers"]):
            write_config(tmp_path, testserver, ", ".join(tools))
            process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while await tool_names(url, "2026-07-28") != tools:
                assert time.monotonic() < deadline, "SIGHUP reload not applied"
                time.sleep(0.05)
    finally:
        stderr = stop(process)
    entries = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    calls = [entry for entry in entries if entry["logger"] == "castproxy.calls"]
    assert [(c["workspace"], c["tool"], c["upstream_status"], c["outcome"]) for c in calls] == [
        ("items", "listItems", 200, "ok")]
    assert [entry["reason"] for entry in entries if entry["msg"] == "config reloaded"] == ["SIGHUP", "SIGHUP"]
    assert API_KEY not in stderr and INBOUND_KEY not in stderr
