"""cast.lock: the tools a config exposes, as last reviewed, recorded as digests.

Written in a fixed, sorted YAML subset, so any machine writes the same bytes (docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from castproxy.config.problems import ConfigError, Problem
from castproxy.config.source import SourceMap, parse_yaml
from castproxy.openapi.model import ToolDefinition

__all__ = [
    "DIGEST_PREFIX", "Inventory", "LockError", "ToolRecord", "WorkspaceRecord", "digest_of", "lock_path",
    "parse_lock", "published_definition", "read_lock", "render_lock", "sorted_inventory", "tool_record"
]

LOCK_VERSION = 1
LOCK_SUFFIX = ".lock"
DIGEST_PREFIX = "sha256:"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# Written without quotes: letters, digits and URL/path punctuation, never a YAML keyword or number.
_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./{}:@+=~*-]*$")
_YAML_WORDS = frozenset({"true", "false", "null", "yes", "no", "on", "off", "y", "n"})


_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LockError(ConfigError):
    """A lock file that cannot be read: every problem at FILE:LINE:COL of the lock."""


@dataclass(frozen=True, slots=True)
class ToolRecord:
    """One exposed tool. `definition` (the published definition) is known when the record was built
    from a compiled spec, not when it was read from a lock; it takes no part in equality."""

    name: str
    operation: str | None
    method: str
    path: str
    digest: str
    definition: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def identity(self) -> str:
        """What stays the same when a tool is renamed: its operation (else method and path)."""
        return self.operation or f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class WorkspaceRecord:
    name: str
    source: str  # the config's `openapi`, a URL with its credentials masked
    spec_digest: str
    server: str | None  # the base URL when it comes from the spec (None: the config sets base_url)
    tools: tuple[ToolRecord, ...]  # sorted by name

    def by_name(self) -> dict[str, ToolRecord]:
        return {tool.name: tool for tool in self.tools}


@dataclass(frozen=True, slots=True)
class Inventory:
    """Every workspace's records, sorted by name: the content of a lock, or what a config gives now."""

    workspaces: tuple[WorkspaceRecord, ...]

    def by_name(self) -> dict[str, WorkspaceRecord]:
        return {workspace.name: workspace for workspace in self.workspaces}


def lock_path(config_path: Path) -> Path:
    """The lock beside a config: cast.yaml -> cast.lock, prod.yaml -> prod.lock."""
    return config_path.with_name(config_path.stem + LOCK_SUFFIX)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def digest_of(value: Any) -> str:
    return DIGEST_PREFIX + hashlib.sha256(canonical_json(value)).hexdigest()


def published_definition(tool: ToolDefinition) -> dict[str, Any]:
    """The tool as `tools/list` publishes it (the wire's field names), without the parts left out there."""
    definition: dict[str, Any] = {"name": tool.name, "description": tool.description, "inputSchema": tool.input_schema}
    if tool.title is not None:
        definition["title"] = tool.title
    if tool.output_schema is not None:
        definition["outputSchema"] = tool.output_schema
    if tool.annotations:
        definition["annotations"] = tool.annotations
    return definition


def tool_record(tool: ToolDefinition) -> ToolRecord:
    definition = published_definition(tool)
    return ToolRecord(name=tool.name, operation=tool.operation_id, method=tool.operation.method,
                      path=tool.operation.path, digest=digest_of(definition), definition=definition)


def sorted_inventory(workspaces: list[WorkspaceRecord]) -> Inventory:
    ordered = sorted(workspaces, key=lambda w: w.name)
    return Inventory(tuple(
        WorkspaceRecord(w.name, w.source, w.spec_digest, w.server, tuple(sorted(w.tools, key=lambda t: t.name)))
        for w in ordered
    ))


# --- writing ---------------------------------------------------------------------------------------

def render_lock(inventory: Inventory, config_name: str) -> str:
    """The lock file's text: the same inventory gives the same bytes, whatever the dict order or machine."""
    lines = [
        f"# The MCP tools that {config_name} exposes, as last reviewed. Written by `castproxy lock`; do not edit.",
        "# `castproxy lock --check` fails while it is out of date; `castproxy diff` shows what changed.",
        f"version: {LOCK_VERSION}",
        "workspaces:" if inventory.workspaces else "workspaces: {}",
    ]
    for workspace in sorted(inventory.workspaces, key=lambda w: w.name):
        lines += [
            f"  {_scalar(workspace.name)}:",
            "    spec:",
            f"      source: {_scalar(workspace.source)}",
            f"      digest: {_scalar(workspace.spec_digest)}",
        ]
        if workspace.server is not None:
            lines.append(f"    server: {_scalar(workspace.server)}")
        lines.append("    tools:" if workspace.tools else "    tools: []")
        for tool in sorted(workspace.tools, key=lambda t: t.name):
            lines.append(f"      - name: {_scalar(tool.name)}")
            if tool.operation is not None:
                lines.append(f"        operation: {_scalar(tool.operation)}")
            lines += [
                f"        method: {_scalar(tool.method)}",
                f"        path: {_scalar(tool.path)}",
                f"        digest: {_scalar(tool.digest)}",
            ]
    return "\n".join(lines) + "\n"


def _scalar(text: str) -> str:
    """A plain YAML scalar when that reads back as the same string, else a JSON string (valid YAML)."""
    if _PLAIN.match(text) and not text.endswith(":") and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


# --- reading ---------------------------------------------------------------------------------------

def read_lock(path: Path) -> Inventory | None:
    """The lock at `path`, None when there is none; raises LockError naming FILE:LINE:COL."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LockError([Problem(str(path), 1, 1, f"cannot read the lock file: {exc.strerror or exc}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LockError([Problem(str(path), 1, 1, "the lock file is not UTF-8 text")]) from None
    return parse_lock(text, path)


def parse_lock(text: str, path: Path) -> Inventory:
    """The lock's inventory; raises LockError naming FILE:LINE:COL for each problem.

    Read with libyaml (PyYAML's C loader: a lock of GitHub's 1,223 tools is 6,000 lines, which a
    pure-Python parser takes seconds over, on every reload); only when something is wrong is it
    parsed again with positions, to say where."""
    hint = "; run `castproxy lock` to write it again"
    try:
        data = yaml.load(text, Loader=_SafeLoader)  # a safe loader (C when libyaml is there)
    except yaml.YAMLError:
        data = None
    positioned = None if data is not None else parse_yaml(text)
    if positioned is not None and positioned.problems:
        raise LockError([Problem(str(path), p.line, p.column, p.message + hint) for p in positioned.problems])
    reader = _LockReader(path, lambda: (positioned or parse_yaml(text)).positions)
    inventory = reader.inventory(data if positioned is None else positioned.data)
    if reader.problems:
        raise LockError([replace(p, message=p.message + hint) for p in reader.problems])
    return inventory


class _LockReader:
    """Checks the lock's shape while reading it; collects every problem with its position."""

    def __init__(self, path: Path, positions: Callable[[], SourceMap]) -> None:
        self.path = path
        self._positions = positions  # parsed only when there is a problem to place
        self._map: SourceMap | None = None
        self.problems: list[Problem] = []

    def _problem(self, loc: tuple[str | int, ...], message: str) -> None:
        if self._map is None:
            self._map = self._positions()
        line, column = self._map.locate(loc)
        self.problems.append(Problem(str(self.path), line, column, message))

    def _text(self, node: Mapping[str, Any], loc: tuple[str | int, ...], key: str, *, optional: bool = False) -> str:
        value = node.get(key)
        if value is None and optional:
            return ""
        if not isinstance(value, str) or not value:
            self._problem((*loc, key), f"`{key}` must be a non-empty string")
            return ""
        return value

    def _digest(self, node: Mapping[str, Any], loc: tuple[str | int, ...], key: str = "digest") -> str:
        value = self._text(node, loc, key)
        if value and not _DIGEST.match(value):
            self._problem((*loc, key), f"`{key}` must be sha256: followed by 64 hex digits")
        return value

    def inventory(self, data: Any) -> Inventory:
        if not isinstance(data, dict):
            self._problem((), "not a castproxy lock file (expected a mapping with `version` and `workspaces`)")
            return Inventory(())
        if data.get("version") != LOCK_VERSION:
            self._problem(("version",), f"unsupported lock version {data.get('version')!r} (this castproxy "
                          f"reads version {LOCK_VERSION})")
        workspaces = data.get("workspaces")
        if not isinstance(workspaces, dict):
            self._problem(("workspaces",), "`workspaces` must be a mapping of workspace name to its tools")
            return Inventory(())
        records = [self._workspace(str(name), node) for name, node in workspaces.items()]
        return sorted_inventory([record for record in records if record is not None])

    def _workspace(self, name: str, node: Any) -> WorkspaceRecord | None:
        loc: tuple[str | int, ...] = ("workspaces", name)
        if not isinstance(node, dict):
            self._problem(loc, f"workspace {name!r} must be a mapping with `spec` and `tools`")
            return None
        spec = node.get("spec")
        if not isinstance(spec, dict):
            self._problem((*loc, "spec"), "`spec` must be a mapping with `source` and `digest`")
            spec = {}
        source = self._text(spec, (*loc, "spec"), "source")
        spec_digest = self._digest(spec, (*loc, "spec"))
        server = node.get("server")
        if server is not None and not isinstance(server, str):
            self._problem((*loc, "server"), "`server` must be a URL")
            server = None
        tools_node = node.get("tools")
        if not isinstance(tools_node, list):
            self._problem((*loc, "tools"), "`tools` must be a list")
            tools_node = []
        tools: list[ToolRecord] = []
        seen: set[str] = set()
        for index, entry in enumerate(tools_node):
            tool_loc = (*loc, "tools", index)
            if not isinstance(entry, dict):
                self._problem(tool_loc, "each tool must be a mapping with name, method, path and digest")
                continue
            tool = ToolRecord(
                name=self._text(entry, tool_loc, "name"),
                operation=self._text(entry, tool_loc, "operation", optional=True) or None,
                method=self._text(entry, tool_loc, "method"),
                path=self._text(entry, tool_loc, "path"),
                digest=self._digest(entry, tool_loc),
            )
            if tool.name in seen:
                self._problem((*tool_loc, "name"), f"tool {tool.name!r} is listed twice")
            seen.add(tool.name)
            tools.append(tool)
        return WorkspaceRecord(name, source, spec_digest, server, tuple(tools))
