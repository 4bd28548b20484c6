"""What `validate` checks beyond the config model: every spec loads and compiles, every configured
operationId exists (with a "did you mean"), every selector matches, and tool names are unique per workspace."""

from __future__ import annotations

from castproxy.config.loader import LoadedConfig
from castproxy.config.problems import Problem
from castproxy.openapi.workspace import WorkspaceError, compile_workspace

__all__ = ["check_config"]

MAX_WARNINGS_PER_WORKSPACE = 20


def check_config(loaded: LoadedConfig, *, offline: bool, counts: dict[str, int] | None = None) -> list[Problem]:
    """Problems (errors and warnings) for every workspace, each at FILE:LINE:COL of the config.

    `counts`, when given, receives each compiled workspace's number of tools."""
    problems: list[Problem] = []
    for name, workspace in loaded.config.workspaces.items():
        spec_loc = ("workspaces", name, "openapi")
        try:
            compiled = compile_workspace(workspace, loaded.base_dir, offline=offline, name=name)
        except WorkspaceError as exc:
            if exc.offline_skipped:
                problems.append(loaded.problem(
                    spec_loc, f"spec {workspace.openapi} not fetched (--offline): its operationIds and selectors "
                    "were not checked",
                    severity="warning",
                ))
                continue
            problems.extend(loaded.problem(loc, message) for loc, message in exc.problems)
            problems.extend(loaded.problem(loc, message, severity="warning") for loc, message in exc.notes)
            continue
        if counts is not None:
            counts[name] = len(compiled.tools)
        problems.extend(loaded.problem(loc, message, severity="warning") for loc, message in compiled.notes)
        warnings = list(compiled.warnings)
        shown = warnings[:MAX_WARNINGS_PER_WORKSPACE]
        problems.extend(loaded.problem(spec_loc, message, severity="warning") for message in shown)
        if len(warnings) > len(shown):
            problems.append(loaded.problem(
                spec_loc, f"{len(warnings) - len(shown)} more compiler warnings (see 'castproxy tools {name}')",
                severity="warning",
            ))
    return problems
