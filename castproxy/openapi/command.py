"""`castproxy tools`: the MCP tools a workspace (or one spec alone) exposes, as clients will see them.

The `--json` shape is stable (docs/architecture.md, "`castproxy tools --json`"); it is written tool by tool.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import orjson

from castproxy.openapi.budget import DEFAULT_MAX_SCHEMA_BYTES
from castproxy.openapi.compiler import compile_spec
from castproxy.openapi.loader import SpecError, load_document, safe_url
from castproxy.openapi.model import ToolDefinition

__all__ = ["tools"]

if TYPE_CHECKING:
    from castproxy.config.problems import Problem

EXIT_OK = 0
EXIT_INVALID = 1
DEFAULT_SEARCH_LIMIT = 10


def tools(args: argparse.Namespace) -> int:
    if getattr(args, "spec", None):
        try:
            limit = getattr(args, "max_schema_bytes", None) or DEFAULT_MAX_SCHEMA_BYTES
            compiled = compile_spec(load_document(args.spec, Path.cwd()), max_schema_bytes=limit)
        except SpecError as exc:
            print(f"castproxy tools: {exc.message}", file=sys.stderr)
            return EXIT_INVALID
        base_url = compiled.servers[0].rstrip("/") if compiled.servers else ""
        return _show(_searched(compiled.tools, args), base_url, compiled.warnings, as_json=args.json,
                     source=args.spec, query=args.search)
    return _workspace_tools(args)


def _workspace_tools(args: argparse.Namespace) -> int:
    # Imported here: `--spec` needs neither the config model nor its loader.
    from castproxy.config.loader import load_config, resolve_config_path
    from castproxy.config.problems import ConfigError
    from castproxy.openapi.workspace import WorkspaceError, compile_workspace

    path = resolve_config_path(args.config)
    if not path.is_file():
        print(f"castproxy tools: config file not found: {path} (pass -c FILE)", file=sys.stderr)
        return EXIT_INVALID
    try:
        loaded = load_config(path, need_secrets=False)  # listing tools uses no upstream secret
    except ConfigError as exc:
        for problem in exc.errors or exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID
    workspace = loaded.config.workspaces.get(args.workspace)
    if workspace is None:
        known = ", ".join(sorted(loaded.config.workspaces))
        print(f"castproxy tools: no workspace {args.workspace!r} in {path} (workspaces: {known})", file=sys.stderr)
        return EXIT_INVALID
    try:
        compiled = compile_workspace(workspace, loaded.base_dir, name=args.workspace)
    except WorkspaceError as exc:
        for loc, message in exc.problems:
            print(loaded.problem(loc, message), file=sys.stderr)
        return EXIT_INVALID
    # The base URL may carry a credential from a ${...} reference (e.g. ?api_key=): never print it.
    shown_url = safe_url(compiled.base_url)
    notes = tuple(_positioned(loaded.problem(loc, message, "warning")) for loc, message in compiled.notes)
    return _show(_searched(compiled.tools, args), shown_url, notes + compiled.warnings, as_json=args.json,
                 source=args.workspace, query=args.search)


def _positioned(problem: Problem) -> str:
    return f"{problem.file}:{problem.line}:{problem.column}: {problem.message}"


def _searched(tools: tuple[ToolDefinition, ...], args: argparse.Namespace) -> tuple[ToolDefinition, ...]:
    """All the tools, or with --search the best --limit for the task, best first."""
    query = getattr(args, "search", None)
    if query is None:
        return tools
    from castproxy.catalog.index import SearchIndex

    by_name = {tool.name: tool for tool in tools}
    hits = SearchIndex(tools).search(query, getattr(args, "limit", None) or DEFAULT_SEARCH_LIMIT)
    return tuple(by_name[hit.name] for hit in hits)


def tool_json(tool: ToolDefinition) -> dict[str, Any]:
    """One tool in the stable `--json` shape."""
    entry: dict[str, Any] = {
        "name": tool.name,
        "operationId": tool.operation_id,
        "method": tool.operation.method,
        "path": tool.operation.path,
        "title": tool.title,
        "description": tool.description,
        "input_schema": tool.input_schema,
    }
    if tool.output_schema is not None:
        entry["output_schema"] = tool.output_schema
    entry["annotations"] = tool.annotations
    return entry


def _show(
    tools: tuple[ToolDefinition, ...], base_url: str, warnings: tuple[str, ...], *, as_json: bool, source: str,
    query: str | None = None,
) -> int:
    if as_json:
        write_json(sys.stdout, tools, base_url, warnings)
        return EXIT_OK
    out = sys.stdout
    found = f" for {query!r}, best first" if query is not None else ""
    out.write(f"{len(tools)} tool{'s' if len(tools) != 1 else ''} from {source}{found}"
              + (f", calling {base_url}" if base_url else "") + "\n")
    for tool in tools:
        out.write("\n" + _human(tool))
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return EXIT_OK


def write_json(out: TextIO, tools: tuple[ToolDefinition, ...], base_url: str, warnings: tuple[str, ...]) -> None:
    """`{"tools": [...], "base_url": ..., "warnings": [...]}` as `json.dumps(..., indent=2)` would write it,
    one tool at a time."""
    out.write('{\n  "tools": [' if tools else '{\n  "tools": []')
    for index, tool in enumerate(tools):
        text = _indented(tool_json(tool))
        out.write(("," if index else "") + "\n    " + text.replace("\n", "\n    "))
    if tools:
        out.write("\n  ]")
    out.write(',\n  "base_url": ' + json.dumps(base_url, ensure_ascii=False))
    out.write(',\n  "warnings": ' + json.dumps(list(warnings), indent=2, ensure_ascii=False).replace("\n", "\n  "))
    out.write("\n}\n")


def _indented(value: Any) -> str:
    """`json.dumps(value, indent=2, ensure_ascii=False)`, fast (orjson) where the value allows it."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
    except TypeError:  # an integer beyond 64 bits in a spec's enum or default
        return json.dumps(value, indent=2, ensure_ascii=False)


def _human(tool: ToolDefinition) -> str:
    hints = tool.annotations
    pairs = (("read-only", "readOnlyHint"), ("destructive", "destructiveHint"))
    flags = [flag for flag, key in pairs if hints.get(key)]
    head = f"{tool.name}  {tool.operation.method} {tool.operation.path}"
    lines = [head + (f"  [{', '.join(flags)}]" if flags else "")]
    summary = tool.description.split("\n\n", 1)[0].replace("\n", " ")
    lines.append("    " + (summary if len(summary) <= 100 else summary[:99].rstrip() + "…"))
    properties = tool.input_schema.get("properties", {})
    required = set(tool.input_schema.get("required", ()))
    if properties:
        described = [
            f"{name}{'*' if name in required else ''}: {_type_of(schema)}" for name, schema in properties.items()
        ]
        lines.append("    arguments (* required): " + ", ".join(described))
    return "\n".join(lines) + "\n"


def _type_of(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    kind = schema.get("type")
    if isinstance(kind, list):
        return "|".join(kind)
    if kind == "array" and isinstance(schema.get("items"), dict) and isinstance(schema["items"].get("type"), str):
        return f"array of {schema['items']['type']}"
    if isinstance(kind, str):
        return kind
    if "enum" in schema:
        return "enum"
    if "anyOf" in schema or "oneOf" in schema:
        return "one of several shapes"
    return "any"
