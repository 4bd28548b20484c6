"""One workspace's tools: its spec compiled, narrowed to the configured operations, renamed as asked.

Problems come back as config locations (`("workspaces", NAME, "tools", 3)`) so the caller can turn
them into FILE:LINE:COL; an unknown operationId gets a "did you mean".
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from castproxy.config.model import ToolSelection, Workspace
from castproxy.openapi.compiler import compile_spec
from castproxy.openapi.loader import SpecError, is_url, load_document
from castproxy.openapi.model import CompiledSpec, ToolDefinition

Loc = tuple[str | int, ...]


class WorkspaceError(Exception):
    """A workspace whose tools cannot be built; `problems` are (config location, message) pairs."""

    def __init__(self, problems: list[tuple[Loc, str]], *, offline_skipped: bool = False) -> None:
        self.problems = problems
        self.offline_skipped = offline_skipped
        super().__init__("; ".join(message for _, message in problems))


@dataclass(frozen=True)
class WorkspaceTools:
    tools: tuple[ToolDefinition, ...]  # enabled ones only, renamed as configured, in config order
    base_url: str  # no trailing slash
    warnings: tuple[str, ...] = ()
    spec: CompiledSpec | None = None  # the whole compiled spec (for `tools` and diagnostics)


def compile_workspace(
    workspace: Workspace, base_dir: Path, *, offline: bool = False, name: str | None = None
) -> WorkspaceTools:
    """Load and compile the workspace's spec and pick its tools.

    `name` is the workspace's key in the config; problem locations start with
    `("workspaces", name)` when it is given, else at the workspace itself (`("openapi",)`)."""
    prefix: Loc = ("workspaces", name) if name is not None else ()
    try:
        document = load_document(workspace.openapi, base_dir, offline=offline)
        compiled = compile_spec(
            document, output_schema=workspace.output_schema, max_schema_bytes=workspace.max_schema_bytes
        )
    except SpecError as exc:
        raise WorkspaceError([((*prefix, "openapi"), exc.message)], offline_skipped=exc.offline_skipped) from None

    problems: list[tuple[Loc, str]] = []
    base_url = _base_url(workspace, compiled)
    if base_url is None:
        problems.append((
            (*prefix, "openapi"),
            "the spec has no absolute server URL to call; set base_url in this workspace",
        ))
    tools, warnings = select_tools(workspace, compiled, prefix, problems)
    if problems:
        raise WorkspaceError(problems)
    return WorkspaceTools(tools=tools, base_url=base_url or "", warnings=warnings, spec=compiled)


def select_tools(
    workspace: Workspace, compiled: CompiledSpec, prefix: Loc, problems: list[tuple[Loc, str]]
) -> tuple[tuple[ToolDefinition, ...], tuple[str, ...]]:
    """The configured tools, in config order; problems are appended for what does not resolve."""
    by_id: dict[str, ToolDefinition] = {}
    duplicated: set[str] = set()
    for tool in compiled.tools:
        if tool.operation_id:
            if tool.operation_id in by_id:
                duplicated.add(tool.operation_id)
            by_id[tool.operation_id] = tool
    operation_ids = sorted(by_id)
    chosen: list[ToolDefinition] = []
    listed: dict[str, int] = {}
    names: dict[str, int] = {}
    per_tool = {warning for tool in compiled.tools for warning in tool.warnings}
    warnings: list[str] = [w for w in compiled.warnings if w not in per_tool]
    for index, entry in enumerate(workspace.tools):
        selection = entry if isinstance(entry, ToolSelection) else ToolSelection(operation=entry)
        loc: Loc = (*prefix, "tools", index) if isinstance(entry, str) else (*prefix, "tools", index, "operation")
        tool = by_id.get(selection.operation)
        if tool is None:
            problems.append((loc, _unknown(selection.operation, operation_ids, workspace.openapi)))
            continue
        if selection.operation in duplicated:
            problems.append((loc, f"operationId {selection.operation!r} is used by more than one operation "
                                  "in the spec; fix the spec so each operationId is unique"))
            continue
        if selection.operation in listed:
            first = listed[selection.operation]
            problems.append((loc, f"operation {selection.operation!r} is already listed at tools[{first}]"))
            continue
        listed[selection.operation] = index
        if selection.name or selection.description:
            tool = replace(
                tool, name=selection.name or tool.name, description=selection.description or tool.description
            )
        if tool.name in names:
            name_loc: Loc = (*prefix, "tools", index, "name") if selection.name else loc
            problems.append((name_loc, f"tool name {tool.name!r} is already used by tools[{names[tool.name]}]; "
                                       "give one of them another name"))
            continue
        names[tool.name] = index
        chosen.append(tool)
        warnings.extend(tool.warnings)
    return tuple(chosen), tuple(warnings)


def _unknown(operation_id: str, known: list[str], spec: str) -> str:
    message = f"operationId {operation_id!r} is not in the spec"
    close = _closest(operation_id, known)
    if close:
        quoted = [repr(c) for c in close]
        options = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
        return f"{message}; did you mean {options}?"
    if not known:
        return message + " (the spec has no operationIds)"
    return message + f" (run 'castproxy tools --spec {spec}' to list its {len(known)} operations)"


def _closest(word: str, known: list[str]) -> list[str]:
    """The best match (ignoring case), and any about as good; none under a similarity of 0.6."""
    matcher = difflib.SequenceMatcher(b=word.lower())
    scored: list[tuple[float, str]] = []
    for candidate in known:
        matcher.set_seq1(candidate.lower())
        if matcher.real_quick_ratio() >= 0.6 and matcher.quick_ratio() >= 0.6:
            scored.append((matcher.ratio(), candidate))
    scored = sorted((item for item in scored if item[0] >= 0.6), key=lambda item: (-item[0], item[1]))
    if not scored:
        return []
    best = scored[0][0]
    return [candidate for ratio, candidate in scored[:3] if ratio >= best - 0.05]


def _base_url(workspace: Workspace, compiled: CompiledSpec) -> str | None:
    if workspace.base_url:
        return workspace.base_url.rstrip("/")
    server = compiled.servers[0] if compiled.servers else "/"
    if is_url(server):
        return server.rstrip("/")
    if is_url(workspace.openapi):  # relative server: against the spec's own URL
        resolved = urljoin(workspace.openapi, server)
        if urlsplit(resolved).scheme in ("http", "https"):
            return resolved.rstrip("/")
    return None
