"""One workspace's tools: its spec compiled, narrowed to the configured operations, renamed as asked.

Problems come back as config locations (`("workspaces", NAME, "tools", 3)`) for FILE:LINE:COL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from castproxy.catalog.select import Picked, select
from castproxy.config.model import Workspace
from castproxy.config.source import Loc
from castproxy.errors import CastproxyError
from castproxy.openapi.compiler import compile_spec
from castproxy.openapi.loader import SpecError, is_url, load_document
from castproxy.openapi.model import CompiledSpec, ToolDefinition

__all__ = ["WorkspaceError", "WorkspaceTools", "compile_workspace"]

LONG_LIST = 300  # tools in a list-mode workspace beyond which `validate` suggests discovery: search


class WorkspaceError(CastproxyError):
    """A workspace whose tools cannot be built; `problems` are (config location, message) pairs."""

    def __init__(
        self, problems: list[tuple[Loc, str]], *, offline_skipped: bool = False, notes: tuple[tuple[Loc, str], ...] = ()
    ) -> None:
        self.problems = problems
        self.offline_skipped = offline_skipped
        self.notes = notes  # positioned warnings found along with the errors
        super().__init__("; ".join(message for _, message in problems))


@dataclass(frozen=True)
class WorkspaceTools:
    tools: tuple[ToolDefinition, ...]  # enabled ones only, renamed as configured, in config order
    base_url: str  # no trailing slash
    warnings: tuple[str, ...] = ()
    spec: CompiledSpec | None = None  # the whole compiled spec (for `tools` and diagnostics)
    spec_digest: str = ""  # sha256 of the loaded document's bytes (cast.lock records it)
    notes: tuple[tuple[Loc, str], ...] = ()  # warnings at a config location (e.g. an exclude that excludes nothing)
    picked: tuple[Picked, ...] = ()  # the tools with the config entries that picked them (per-entry settings)


def compile_workspace(
    workspace: Workspace,
    base_dir: Path,
    *,
    offline: bool = False,
    name: str | None = None,
    document: dict[str, Any] | None = None,
    fetcher: Callable[[str], bytes] | None = None,
) -> WorkspaceTools:
    """Load and compile the workspace's spec and pick its tools.

    `name` is the workspace's key in the config; problem locations start with
    `("workspaces", name)` when it is given, else at the workspace itself (`("openapi",)`).
    `document`, when given, is used instead of loading the spec (a reviewed copy kept by castproxy);
    `fetcher` supplies a remote spec's bytes (see `load_document`)."""
    prefix: Loc = ("workspaces", name) if name is not None else ()
    try:
        if document is None:
            document = load_document(workspace.openapi, base_dir, offline=offline, fetcher=fetcher)
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
    picked: list[Picked] = []
    tools, warnings, notes = select_tools(workspace, compiled, prefix, problems, picked=picked)
    if problems:
        raise WorkspaceError(problems, notes=notes)
    return WorkspaceTools(tools=tools, base_url=base_url or "", warnings=warnings, spec=compiled, notes=notes,
                          spec_digest=getattr(document, "digest", ""), picked=tuple(picked))


def select_tools(
    workspace: Workspace, compiled: CompiledSpec, prefix: Loc, problems: list[tuple[Loc, str]],
    picked: list[Picked] | None = None,
) -> tuple[tuple[ToolDefinition, ...], tuple[str, ...], tuple[tuple[Loc, str], ...]]:
    """The configured tools (order: docs/config.md, `tools`), the compiler warnings about them and the
    positioned selection warnings; errors are appended to `problems` (and the picks to `picked`)."""
    selection = select(workspace.tools, workspace.exclude, compiled.tools, prefix=prefix, spec=workspace.openapi)
    problems.extend(selection.errors)
    if picked is not None:
        picked.extend(selection.picked)
    notes = selection.warnings
    if workspace.discovery == "list" and len(selection.picked) > LONG_LIST:
        notes += (((*prefix, "tools"), f"{len(selection.picked):,} tools in tools/list: many MCP clients cut or refuse "
                   "long tool lists, and each schema costs the model context; consider `discovery: search`"),)
    per_tool = {warning for tool in compiled.tools for warning in tool.warnings}
    warnings: list[str] = [w for w in compiled.warnings if w not in per_tool]
    for tool in selection.tools:
        warnings.extend(tool.warnings)
    return selection.tools, tuple(warnings), notes


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
