"""`castproxy validate` (FILE:LINE:COL problems, or one OK line per workspace; `--format github|json`) and
`castproxy schema`. Spec checks come from openapi/check.py, issuer checks from config/issuers.py.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from castproxy.config.loader import CONFIG_ENV, LoadedConfig, load_config, resolve_config_path
from castproxy.config.model import ALL_OPERATIONS, OAuth2Auth, ToolSelector, Workspace
from castproxy.config.problems import ConfigError, Problem
from castproxy.config.schema import schema_text

__all__ = ["schema", "validate"]

EXIT_OK = 0
EXIT_INVALID = 1


def validate(args: argparse.Namespace) -> int:
    # Imported here: these modules build on the config package (at the top the imports would be circular).
    from castproxy.config.issuers import check_issuers
    from castproxy.gitops.drift import lock_problems
    from castproxy.openapi.check import check_config

    output = getattr(args, "format", "text")
    path = resolve_config_path(args.config)
    if not path.is_file():
        why = "is a directory" if path.is_dir() else "not found"
        message = f"config file {why}: {path} (pass -c FILE or set {CONFIG_ENV})"
        if output == "text":
            print(f"castproxy validate: {message}", file=sys.stderr)
        else:
            _report(output, [Problem(str(path), 1, 1, message)], None, path, offline=args.offline)
        return EXIT_INVALID
    try:
        loaded = load_config(path, need_secrets=not args.offline)  # a review-time check has no secrets
    except ConfigError as exc:
        _report(output, exc.problems, None, path, offline=args.offline)
        return EXIT_INVALID
    problems = list(loaded.warnings)
    counts: dict[str, int] = {}  # tools per workspace, once its spec compiled
    try:
        problems += check_config(loaded, offline=args.offline, counts=counts)
    except ConfigError as exc:
        problems += exc.problems
    if not args.offline:
        problems += check_issuers(loaded)
    problems += lock_problems(loaded)
    valid = not any(problem.severity == "error" for problem in problems)
    _report(output, problems, loaded if valid else None, path, offline=args.offline, counts=counts)
    return EXIT_OK if valid else EXIT_INVALID


def _report(
    output: str,
    problems: list[Problem],
    loaded: LoadedConfig | None,
    path: Path,
    *,
    offline: bool,
    counts: dict[str, int] | None = None,
) -> None:
    """Problems (and, for a valid config, the summary) as text, GitHub workflow commands or JSON."""
    shown = _shown_problems(problems, path)
    if output == "json":
        from castproxy.gitops.ci import validate_json

        workspaces = [_workspace_json(name, workspace, loaded, counts or {}) for name, workspace in
                      loaded.config.workspaces.items()] if loaded is not None else []
        redirect = loaded.callback_url if loaded is not None and _needs_redirect_uri(loaded) else None
        sys.stdout.write(validate_json(str(path), shown, offline=offline, workspaces=workspaces,
                                       redirect_uri=redirect))
        return
    if output == "github":
        from castproxy.gitops.ci import github_command

        for problem in shown:
            print(github_command(problem))
    else:
        for problem in shown:
            print(problem)
    if loaded is not None:
        _print_summary(loaded, path, counts or {}, offline=offline)


def schema(args: argparse.Namespace) -> int:
    sys.stdout.write(schema_text())
    return EXIT_OK


def _shown_problems(problems: list[Problem], path: Path) -> list[Problem]:
    """Unique, in file order, naming the config as the user wrote its path."""
    shown = str(path)
    absolute = str(path.absolute())
    unique = dict.fromkeys(replace(p, file=shown) if p.file == absolute else p for p in problems)
    return sorted(unique, key=lambda p: (p.file, p.line, p.column))


def _needs_redirect_uri(loaded: LoadedConfig) -> bool:
    return any(
        isinstance(w.auth, OAuth2Auth) and w.auth.grant == "authorization_code"
        for w in loaded.config.workspaces.values()
    )


def _workspace_json(
    name: str, workspace: Workspace, loaded: LoadedConfig, counts: dict[str, int]
) -> dict[str, object]:
    return {"name": name, "auth": _describe_auth(workspace), "tools": _known_count(name, workspace, counts),
            "discovery": workspace.discovery, "url": f"{loaded.public_url}/mcp/{name}"}


def _known_count(name: str, workspace: Workspace, counts: dict[str, int]) -> int | None:
    """Tools the workspace exposes: counted from its compiled spec, or from its entries when they are all
    operationIds (a spec not fetched under --offline); None when selectors pick them from an unread spec."""
    explicit = all(not isinstance(entry, ToolSelector) and entry != ALL_OPERATIONS for entry in workspace.tools)
    return counts.get(name, len(workspace.tools) if explicit else None)


def _tool_count(name: str, workspace: Workspace, counts: dict[str, int]) -> str:
    known = _known_count(name, workspace, counts)
    tools = _count(known, "tool") if known is not None else "tools by selector, not counted"
    return tools + (", discovery search" if workspace.discovery == "search" else "")


def _print_summary(loaded: LoadedConfig, path: Path, counts: dict[str, int], *, offline: bool) -> None:
    for name, workspace in loaded.config.workspaces.items():
        print(f"ok: workspace '{name}' ({_describe_auth(workspace)}, {_tool_count(name, workspace, counts)}) "
              f"at {loaded.public_url}/mcp/{name}")
    if _needs_redirect_uri(loaded):
        print(f"register this redirect URI at the upstream OAuth server: {loaded.callback_url}")
    if loaded.config.server.identity is not None:
        print(f"register this redirect URI for client {loaded.config.server.identity.client_id} at the identity "
              f"provider (server.identity): {loaded.identity_callback_url}")
    if offline:
        print("note: --offline: specs behind URLs were not fetched")
    print(f"{path}: valid ({_count(len(loaded.config.workspaces), 'workspace')})")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _describe_auth(workspace: Workspace) -> str:
    auth = workspace.auth
    if isinstance(auth, OAuth2Auth):
        return f"oauth2 {auth.provider} {auth.grant}"
    return f"auth {auth.type}"
