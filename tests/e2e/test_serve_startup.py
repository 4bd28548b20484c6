"""`castproxy serve` at start, as a person at a terminal sees it: the banner before the logs, a busy port said
in one line (exit 1), log format and level from options or the environment, and a warning when the
listening port or host disagrees with public_url.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from support import web
from support.net import free_port
from support.serve_process import start_serve, stop_serve

from castproxy.testserver.app import create_app as create_testserver
from castproxy.testserver.runner import run_in_thread

pytestmark = pytest.mark.slow

CLEAN_ENV = {key: value for key, value in os.environ.items() if not key.startswith("CASTPROXY_")}
CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "listItems", "arguments": {}}}
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}


@pytest.fixture(scope="module")
def testserver() -> Iterator[str]:
    server = run_in_thread(create_testserver("none"))
    yield server.url
    server.stop()


def write_config(folder: Path, upstream: str, server: str = "  host: 127.0.0.1\n") -> Path:
    path = folder / "cast.yaml"
    path.write_text(f"version: 1\nserver:\n{server}store:\n  path: state.db\nworkspaces:\n"
                    f"  items:\n    openapi: {upstream}/openapi.json\n    base_url: {upstream}\n"
                    f"    tools: [listItems, getItem]\n  users:\n    openapi: {upstream}/openapi.json\n"
                    f"    base_url: {upstream}\n    tools: [listUsers]\n")
    return path


def serve(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "castproxy", "serve", "-c", str(config), *args],
                          capture_output=True, text=True, timeout=60, env={**CLEAN_ENV, **(env or {})})


def test_a_busy_port_is_one_line_naming_the_port_and_how_to_choose_another(tmp_path: Path, testserver: str) -> None:
    config = write_config(tmp_path, testserver)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(config, "--port", str(port))
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"castproxy serve: port {port} on 127.0.0.1 is already in use")
    assert all(way in line for way in ("--port", "server.port", "CASTPROXY_PORT"))
    assert "serving" not in result.stderr and "Errno" not in result.stderr and "Traceback" not in result.stderr


def test_the_banner_comes_first_and_names_every_mcp_url_and_the_store(tmp_path: Path, testserver: str) -> None:
    config = write_config(tmp_path, testserver)
    process, url = start_serve(config, CLEAN_ENV)
    stderr = stop_serve(process)
    lines = stderr.splitlines()
    first_json = next(index for index, line in enumerate(lines) if line.startswith("{"))
    head = "\n".join(lines[:first_json])
    assert lines[0] == f"castproxy 0.1.0 serving {config}"
    assert f"listening on    {url}" in head
    assert re.search(rf"workspaces +items +{re.escape(url)}/mcp/items +\(2 tools, no upstream auth\)", head), head
    assert re.search(rf"users +{re.escape(url)}/mcp/users +\(1 tool, no upstream auth\)", head), head
    assert f"store           sqlite {tmp_path / 'state.db'}" in head
    serving = [json.loads(line) for line in lines[first_json:] if line.startswith("{") and '"serving"' in line]
    assert serving and serving[0]["workspaces"] == ["items", "users"]


async def call_once(url: str) -> None:
    async with httpx2.AsyncClient() as http:
        answer = await http.post(f"{url}/mcp/items", json=CALL, headers=HEADERS)
    assert answer.status_code == 200 and answer.json()["result"]["isError"] is False, answer.text


@pytest.mark.parametrize("how", ["option", "environment"])
async def test_log_level_warning_drops_the_line_per_call(tmp_path: Path, testserver: str, how: str) -> None:
    config = write_config(tmp_path, testserver)
    args, env = ("--no-reload", "--log-level", "WARNING"), CLEAN_ENV
    if how == "environment":
        args, env = ("--no-reload",), {**CLEAN_ENV, "CASTPROXY_LOG_LEVEL": "warning"}
    process, url = start_serve(config, env, args=args)
    await call_once(url)
    stderr = stop_serve(process)
    assert "castproxy.calls" not in stderr and "tool call" not in stderr
    assert '"level":"info"' not in stderr


async def test_the_line_per_call_is_at_debug_and_text_format_reads_as_text(tmp_path: Path, testserver: str) -> None:
    """The record of each call is the audit trail (stdout); the log line per call is for --log-level debug."""
    config = write_config(tmp_path, testserver)
    process, url = start_serve(config, {**CLEAN_ENV, "CASTPROXY_LOG_FORMAT": "text", "CASTPROXY_LOG_LEVEL": "debug"})
    await call_once(url)
    stderr = stop_serve(process)
    assert not any(line.startswith("{") for line in stderr.splitlines())
    assert re.search(r"^\d{4}-\d\d-\d\dT[\d:.]+Z debug +castproxy\.calls: tool call workspace=items tool=listItems "
                     r"upstream_status=200 duration_ms=[\d.]+ outcome=ok$", stderr, re.M), stderr
    assert re.search(r"info +castproxy\.serve\.app: serving config=\S+ workspaces=items,users$", stderr, re.M)


def test_bad_log_settings_are_usage_errors(tmp_path: Path, testserver: str) -> None:
    config = write_config(tmp_path, testserver)
    result = serve(config, env={"CASTPROXY_LOG_LEVEL": "loud"})
    assert result.returncode == 2
    assert result.stderr.strip() == ("castproxy serve: CASTPROXY_LOG_LEVEL: unknown log level 'loud': use one of "
                                     "debug, info, warning, error, critical")
    result = serve(config, "--log-format", "xml")
    assert result.returncode == 2 and "invalid choice: 'xml'" in result.stderr


def test_a_port_option_disagreeing_with_public_url_warns_at_start(tmp_path: Path, testserver: str) -> None:
    config = write_config(tmp_path, testserver, "  public_url: http://localhost:8080\n  port: 8080\n")
    process, url = start_serve(config, CLEAN_ENV)  # start_serve passes --port with a free port
    port = url.rsplit(":", 1)[1]
    stderr = stop_serve(process)
    warning = f"castproxy listens on port {port} (--port) but server.public_url is http://localhost:8080"
    assert f"  warning: {warning}" in stderr
    assert "Set server.public_url to match (e.g. http://localhost:" + port in stderr
    logged = [json.loads(line) for line in stderr.splitlines() if line.startswith("{") and warning in line]
    assert logged and logged[0]["level"] == "warning"


def test_castproxy_port_disagreeing_with_public_url_warns_and_a_matching_one_does_not(
    tmp_path: Path, testserver: str
) -> None:
    port = free_port()
    config = write_config(tmp_path, testserver, "  public_url: http://localhost:8080\n")
    process = subprocess.Popen([sys.executable, "-m", "castproxy", "serve", "-c", str(config), "--no-reload"],
                               env={**CLEAN_ENV, "CASTPROXY_PORT": str(port)}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    _wait_healthy(process, port)
    stderr = stop_serve(process)
    assert f"castproxy listens on port {port} (CASTPROXY_PORT) but server.public_url is http://localhost:8080" in stderr

    config = write_config(tmp_path, testserver, f"  public_url: http://localhost:{port}\n")
    process, _ = start_serve(config, CLEAN_ENV, port)
    stderr = stop_serve(process)
    assert "warning:" not in stderr and '"level":"warning"' not in stderr


def _wait_healthy(process: subprocess.Popen[str], port: int) -> None:
    for _ in range(300):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            if web.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("castproxy serve did not answer /healthz")
