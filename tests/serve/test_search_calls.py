"""A `discovery: search` workspace in process: a call through call_operation is logged and measured like a direct
call, an operation named like a meta-tool stays reachable through call_operation, and a long list-mode workspace
gets a hint."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_support import SPEC, Upstream, config_text, mcp_client, run
from support.net import free_socket
from support.servers import Running

from castproxy.serve.logs import CALLS_LOGGER


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Upstream]]:
    from castproxy.serve.app import create_app

    api = Upstream()
    upstream = run(api.app())
    folder: Path = tmp_path_factory.mktemp("search")
    spec: dict[str, Any] = copy.deepcopy(SPEC)
    spec["paths"]["/api/whoami"]["get"]["operationId"] = "search_operations"  # clashes with a meta-tool's name
    (folder / "spec.json").write_text(json.dumps(spec))
    (folder / "cast.yaml").write_text(config_text(upstream.url, {"find": "    tools: '*'\n    discovery: search"}))
    sock = free_socket()
    started: list[Running] = [upstream, run(create_app(folder / "cast.yaml", reload=False,
                                                       port_override=sock.getsockname()[1]), sock)]
    try:
        yield started[1].url, api
    finally:
        for running in started:
            running.stop()


async def test_call_operation_takes_the_direct_path(
    proxy: tuple[str, Upstream], caplog: pytest.LogCaptureFixture
) -> None:
    url, api = proxy
    caplog.set_level(logging.DEBUG, logger=CALLS_LOGGER)
    async with mcp_client(f"{url}/mcp/find", "legacy") as client:
        result = await client.call_tool("call_operation", {"name": "getItem", "arguments": {"id": "42"}})
        assert result.structured_content == {"id": "42", "name": "thing"}
        failed = await client.call_tool("call_operation", {"name": "failHard"})
        assert failed.is_error and "500" in failed.content[0].text
        searched = await client.call_tool("search_operations", {"query": "echo the credentials"})
    calls = [record.__dict__["fields"] for record in caplog.records if record.name == CALLS_LOGGER]
    assert [(c["tool"], c["upstream_status"], c["outcome"]) for c in calls] == [
        ("getItem", 200, "ok"), ("failHard", 500, "upstream_error"), ("search_operations", None, "ok")]
    assert api.seen[-2].path == "/api/items/42"
    # The meta-tool answers to its name; the operation of the same name is found and called through call_operation.
    assert searched.structured_content["operations"][0]["name"] == "search_operations"
    async with mcp_client(f"{url}/mcp/find", "2026-07-28") as client:
        clash = await client.call_tool("call_operation", {"name": "search_operations"})
    assert not clash.is_error and api.seen[-1].path == "/api/whoami"


def test_a_long_list_suggests_search_mode(tmp_path: Path) -> None:
    from castproxy.config.loader import load_config
    from castproxy.openapi.check import check_config

    paths = {f"/things/{n}": {"get": {"operationId": f"thing{n}", "responses": {"200": {"description": "ok"}}}}
             for n in range(301)}
    spec = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "servers": [{"url": "https://x.example"}],
            "paths": paths}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "cast.yaml").write_text("version: 1\nworkspaces:\n  w:\n    openapi: spec.json\n    tools: '*'\n")
    problems = [str(p) for p in check_config(load_config(tmp_path / "cast.yaml"), offline=False)]
    assert problems == [f"{tmp_path / 'cast.yaml'}:5:12: warning: 301 tools in tools/list: many MCP clients cut or "
                        "refuse long tool lists, and each schema costs the model context; consider `discovery: search`"]
    (tmp_path / "cast.yaml").write_text("version: 1\nworkspaces:\n  w:\n    openapi: spec.json\n    tools: '*'\n"
                                        "    discovery: search\n")
    assert check_config(load_config(tmp_path / "cast.yaml"), offline=False) == []
