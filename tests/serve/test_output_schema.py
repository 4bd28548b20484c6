"""`output_schema: true`: an upstream 2xx JSON answer that breaks the published output schema never reaches
the client as structuredContent (clients reject it and the user gets nothing); it comes back as an `isError`
result naming the mismatch, with the body as text. Conforming answers and workspaces without output schemas
are unchanged."""

from __future__ import annotations

import copy
import json
import logging

import pytest
import serve_support
from serve_support import MODES, mcp_client

pytestmark = pytest.mark.parametrize("mode", MODES)

ITEM = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
        "required": ["id", "name"]}


@pytest.fixture(autouse=True)
def _typed_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test spec with response schemas: getItem says `id` is an integer, but the upstream echoes the
    path segment as a string (drift); listItems' array of items matches what the upstream sends."""
    spec = copy.deepcopy(serve_support.SPEC)
    paths = spec["paths"]
    for path, schema in (("/api/items/{id}", ITEM), ("/api/items", {"type": "array", "items": ITEM})):
        paths[path]["get"]["responses"]["200"]["content"] = {"application/json": {"schema": schema}}
    monkeypatch.setattr(serve_support, "SPEC", spec)


async def test_answer_breaking_the_output_schema_is_an_error_naming_the_mismatch(start_proxy, mode, caplog):
    proxy = start_proxy({"typed": "    output_schema: true\n    tools: [getItem, listItems]"})
    with caplog.at_level(logging.DEBUG, logger="castproxy.calls"):
        async with mcp_client(proxy.mcp("typed"), mode) as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            drifted = await client.call_tool("getItem", {"id": "7"})
            conforming = await client.call_tool("listItems", {})
    assert tools["getItem"].output_schema["properties"]["id"] == {"type": "integer"}
    assert drifted.is_error and drifted.structured_content is None
    note, body = (block.text for block in drifted.content)
    assert "does not match the tool's output schema ($.id: '7' is not of type 'integer')" in note
    assert json.loads(body) == {"id": "7", "name": "thing"}
    assert not conforming.is_error
    assert conforming.structured_content == {"result": [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}]}
    outcomes = [record.fields["outcome"] for record in caplog.records if record.name == "castproxy.calls"]
    assert outcomes == ["output_schema_mismatch", "ok"]


async def test_without_output_schema_the_answer_passes_through(start_proxy, mode):
    proxy = start_proxy({"plain": "    tools: [getItem]"})
    async with mcp_client(proxy.mcp("plain"), mode) as client:
        result = await client.call_tool("getItem", {"id": "7"})
    assert not result.is_error
    assert result.structured_content == {"id": "7", "name": "thing"}
