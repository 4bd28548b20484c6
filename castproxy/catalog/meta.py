"""The three meta-tools of a `discovery: search` workspace: search its operations, describe one, call one.

Calling one is serve/calls.py's `ToolCaller`, so it takes the very path of a direct tool call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import mcp_types

from castproxy.catalog.index import SearchIndex, summary_of
from castproxy.openapi.model import ToolDefinition

__all__ = [
    "CALL", "CALL_SCHEMA", "DEFAULT_LIMIT", "DESCRIBE", "DESCRIBE_SCHEMA", "NAMES", "SEARCH", "SEARCH_SCHEMA",
    "Lookup", "listing_tools", "operation_details", "search", "unknown_operation"
]

SEARCH = "search_operations"
DESCRIBE = "describe_operation"
CALL = "call_operation"
NAMES = frozenset({SEARCH, DESCRIBE, CALL})
DEFAULT_LIMIT = 10
MAX_LIMIT = 50
SUGGESTIONS = 3

_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SEARCH_SCHEMA: dict[str, Any] = {
    "$schema": _DIALECT,
    "type": "object",
    "properties": {
        "query": {"type": "string", "minLength": 1, "maxLength": 500,
                  "description": "What you want to do, in plain words, e.g. 'open a pull request' or "
                                 "'list the members of a team'."},
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT,
                  "description": f"How many operations to return, best first (default {DEFAULT_LIMIT})."},
    },
    "required": ["query"],
    "additionalProperties": False,
}
DESCRIBE_SCHEMA: dict[str, Any] = {
    "$schema": _DIALECT,
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200,
                 "description": f"The operation's name, as {SEARCH} returned it."},
    },
    "required": ["name"],
    "additionalProperties": False,
}
CALL_SCHEMA: dict[str, Any] = {
    "$schema": _DIALECT,
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200,
                 "description": f"The operation's name, as {SEARCH} returned it."},
        "arguments": {"type": "object", "default": {},
                      "description": f"The operation's arguments: an object matching the input schema "
                                     f"{DESCRIBE} returns."},
    },
    "required": ["name"],
    "additionalProperties": False,
}


def listing_tools(api: str, count: int) -> list[mcp_types.Tool]:
    """The meta-tools as tools/list shows them; `api` names the API (the workspace's description or title)."""
    return [
        mcp_types.Tool(
            name=SEARCH,
            title="Search operations",
            description=(
                f"Find operations of this API ({api}; {count:,} operations) by what you want to do, in plain words "
                "(e.g. 'create an issue', 'list the members of a team'). Returns the best matches first, each "
                f"with its name, a one-line summary, HTTP method and path. Next, call {DESCRIBE} with a name to "
                f"see its arguments, then {CALL} to run it. Search again with other words if nothing fits."
            ),
            input_schema=SEARCH_SCHEMA,
            annotations=mcp_types.ToolAnnotations(title="Search operations", read_only_hint=True,
                                                  idempotent_hint=True, open_world_hint=False),
        ),
        mcp_types.Tool(
            name=DESCRIBE,
            title="Describe an operation",
            description=(
                f"The full description and the input schema (JSON Schema) of one operation of this API, by the "
                f"name {SEARCH} returned. Read it before {CALL}: the arguments must match this schema."
            ),
            input_schema=DESCRIBE_SCHEMA,
            annotations=mcp_types.ToolAnnotations(title="Describe an operation", read_only_hint=True,
                                                  idempotent_hint=True, open_world_hint=False),
        ),
        mcp_types.Tool(
            name=CALL,
            title="Call an operation",
            description=(
                f"Run one operation of this API: its name (from {SEARCH}) and its arguments (an object "
                f"matching the schema {DESCRIBE} returns). Returns the API's answer. Invalid arguments, an "
                "unknown name and upstream errors come back as an error result saying what to fix. The "
                "operation may change or delete data: check its method and description first."
            ),
            input_schema=CALL_SCHEMA,
            annotations=mcp_types.ToolAnnotations(title="Call an operation", read_only_hint=False,
                                                  destructive_hint=True, idempotent_hint=False, open_world_hint=True),
        ),
    ]


def operation_entry(tool: ToolDefinition) -> dict[str, Any]:
    """One search result: enough to choose, not the schema (describe_operation has that)."""
    return {"name": tool.name, "summary": summary_of(tool), "method": tool.operation.method,
            "path": tool.operation.path}


Lookup = Callable[[str], ToolDefinition | None]  # a tool of the workspace by name


def search(index: SearchIndex, lookup: Lookup, query: str, limit: int, spare: int = 0) -> mcp_types.CallToolResult:
    """`spare`: how many hits `lookup` may drop (tools hidden from the caller), so `limit` are still shown."""
    found = (lookup(hit.name) for hit in index.search(query, limit + spare))
    hits = [tool for tool in found if tool is not None][:limit]
    payload = {"query": query, "operations": [operation_entry(tool) for tool in hits]}
    if not hits:
        payload["hint"] = "Nothing matched; try other words (a verb and the thing acted on, e.g. 'delete a user')."
    return _structured(payload)


def operation_details(tool: ToolDefinition) -> mcp_types.CallToolResult:
    """The `describe_operation` answer: one operation's entry with its description and schemas."""
    payload: dict[str, Any] = {
        **operation_entry(tool),
        "description": tool.description,
        "input_schema": tool.input_schema,
    }
    if tool.output_schema is not None:
        payload["output_schema"] = tool.output_schema
    payload["annotations"] = tool.annotations
    return _structured(payload)


def unknown_operation(name: str, index: SearchIndex) -> mcp_types.CallToolResult:
    """An error result for a name the workspace has no operation for, with the closest names."""
    shown = name[:64]
    close = index.similar_names(name, SUGGESTIONS)
    text = f"Unknown operation '{shown}'."
    if close:
        text += " Did you mean: " + ", ".join(close) + "?"
    text += f" Use {SEARCH} to find operation names."
    return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=text)], is_error=True)


def _structured(payload: dict[str, Any]) -> mcp_types.CallToolResult:
    text = json.dumps(payload, ensure_ascii=False)
    return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=text)],
                                    structured_content=payload)
