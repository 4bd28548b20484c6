"""A running proxy with cast.lock beside its config: the spec changes under it and hot reload picks it up.

enforce keeps serving the reviewed tools and says so in /readyz and /metrics; an updated lock is
picked up by the same watcher and the new tools are served; warn serves the drifted tools and says so;
a workspace that drifted before the proxy started answers 503 with the reason under enforce.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

import pytest
from serve_support import MODERN, SPEC, config_text, mcp_client, run, wait_until, write_spec
from support import web
from support.metrics import scrape, value
from support.net import free_socket

from castproxy.cli import main
from castproxy.openapi import loader
from castproxy.serve.app import create_app

GET_ONLY = {"open": "    tools: [listItems, getItem]"}


def readyz(proxy) -> dict:
    return web.get(f"{proxy.url}/readyz").json()


async def get_item_schema(proxy) -> dict:
    async with mcp_client(proxy.mcp("open"), MODERN) as client:
        tools = (await client.list_tools()).tools
    return next(tool for tool in tools if tool.name == "getItem").input_schema


def write_locked(tmp_path: Path, upstream_url: str, mode: str) -> None:
    """cast.yaml + spec.json + cast.lock, as a reviewed pull request would leave them."""
    write_spec(tmp_path)
    (tmp_path / "cast.yaml").write_text(config_text(upstream_url, GET_ONLY, extra_server=f"  lock: {mode}\n"))
    assert main(["lock", "-c", str(tmp_path / "cast.yaml")]) == 0


def edit_spec(tmp_path: Path) -> None:
    """getItem gains a required query argument; written the way editors save (rename over the file)."""
    spec = json.loads(json.dumps(SPEC))
    spec["paths"]["/api/items/{id}"]["get"]["parameters"].append(
        {"name": "fields", "in": "query", "required": True, "schema": {"type": "string"}})
    temporary = tmp_path / "spec.json.tmp"
    temporary.write_text(json.dumps(spec))
    os.replace(temporary, tmp_path / "spec.json")


async def test_enforce_keeps_serving_the_reviewed_tools_when_the_spec_changes(tmp_path, start_proxy, upstream):
    write_locked(tmp_path, upstream[1], "enforce")
    proxy = start_proxy(GET_ONLY, extra_server="  lock: enforce\n")
    assert readyz(proxy)["lock"]["drifted"] == []
    assert "fields" not in (await get_item_schema(proxy))["properties"]

    edit_spec(tmp_path)
    await wait_until(lambda: readyz(proxy)["lock"]["drifted"] == ["open"])
    body = readyz(proxy)
    assert body["status"] == "ready"
    assert body["lock"]["workspaces"]["open"] == {
        "state": "drifted", "serving": "reviewed", "changes": ["getItem: argument `fields` added (required)"]}
    assert "fields" not in (await get_item_schema(proxy))["properties"]
    async with mcp_client(proxy.mcp("open"), MODERN) as client:
        result = await client.call_tool("getItem", {"id": "7"})
    assert not result.is_error and result.structured_content == {"id": "7", "name": "thing"}
    assert value(scrape(proxy.url), "castproxy_lock_drift", workspace="open", serving="reviewed") == 1

    # The change is reviewed: the new lock alone is a reload, and the new tools are served.
    assert main(["lock", "-c", str(proxy.config)]) == 0
    await wait_until(lambda: readyz(proxy)["lock"]["drifted"] == [])
    assert "fields" in (await get_item_schema(proxy))["required"]


async def test_warn_serves_the_drifted_tools_and_says_so(tmp_path, start_proxy, upstream):
    write_locked(tmp_path, upstream[1], "warn")
    proxy = start_proxy(GET_ONLY, extra_server="  lock: warn\n")
    edit_spec(tmp_path)
    await wait_until(lambda: readyz(proxy)["lock"]["drifted"] == ["open"])
    assert readyz(proxy)["lock"]["workspaces"]["open"]["serving"] == "compiled"
    assert "fields" in (await get_item_schema(proxy))["required"]
    assert value(scrape(proxy.url), "castproxy_lock_drift", workspace="open", serving="compiled") == 1


async def test_enforce_refuses_a_workspace_that_drifted_before_the_start(tmp_path, upstream,
                                                                          monkeypatch: pytest.MonkeyPatch):
    write_locked(tmp_path, upstream[1], "enforce")
    edit_spec(tmp_path)
    monkeypatch.setattr(loader, "_parsed", OrderedDict())  # as in a fresh process: no reviewed spec in memory
    sock = free_socket()
    running = run(create_app(tmp_path / "cast.yaml", port_override=sock.getsockname()[1]), sock)
    try:
        response = web.post(f"{running.url}/mcp/open", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                            headers={"MCP-Protocol-Version": MODERN,
                                        "Accept": "application/json, text/event-stream"})
        body = web.get(f"{running.url}/readyz").json()
    finally:
        running.stop()
    assert response.status_code == 503
    assert response.json()["error"] == "workspace_unavailable"
    assert "differ from cast.lock (server.lock: enforce)" in response.json()["message"]
    # Its only workspace is refused: nothing serves, so not ready (docs/operations.md, readiness).
    assert body["status"] == "unready" and "open" in body["unavailable"]
    assert body["lock"]["workspaces"]["open"]["serving"] == "none"
