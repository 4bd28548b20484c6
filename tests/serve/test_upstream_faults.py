"""A tool call whose upstream connection drops after the upstream read the request: sent once, said plainly."""

from __future__ import annotations

import json
from pathlib import Path

from serve_support import MODERN, mcp_client, run
from support.dropping import DroppingUpstream
from support.net import free_socket

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "Dropping API", "version": "1"},
    "paths": {
        "/drop/items/{id}": {
            "delete": {
                "operationId": "deleteItem",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": {"204": {"description": "deleted"}},
            }
        }
    },
}


async def test_a_dropped_delete_runs_once_and_the_result_says_the_connection_dropped(tmp_path: Path) -> None:
    from castproxy.serve.app import create_app

    upstream = DroppingUpstream()
    await upstream.start()
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    config = tmp_path / "cast.yaml"
    config.write_text(f"version: 1\nstore:\n  path: state.db\nworkspaces:\n  api:\n    openapi: spec.json\n"
                      f"    base_url: {upstream.url}\n    tools: [deleteItem]\n")
    sock = free_socket()
    running = run(create_app(config, reload=False, port_override=sock.getsockname()[1]), sock)
    try:
        async with mcp_client(f"{running.url}/mcp/api", MODERN) as client:
            result = await client.call_tool("deleteItem", {"id": 4})
    finally:
        running.stop()
        await upstream.stop()
    assert upstream.count("DELETE", "/drop/items/4") == 1
    text = result.content[0].text
    assert result.is_error
    assert "dropped before an answer came" in text and "did not send it again" in text
