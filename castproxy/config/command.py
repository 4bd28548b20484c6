"""`castproxy validate` and `castproxy schema`.

validate prints one `FILE:LINE:COL: message` line per problem (warnings as `... warning: ...`) and
exits 1 when any is an error; on success, one OK line per workspace and the redirect URI to register
at each upstream OAuth server. Spec checks (specs load, operationIds exist) come from
castproxy.openapi.check.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from castproxy.config.loader import CONFIG_ENV, LoadedConfig, load_config, resolve_config_path
from castproxy.config.model import ALL_OPERATIONS, OAuth2Auth, ToolSelector, Workspace
from castproxy.config.problems import ConfigError, Problem
from castproxy.config.schema import schema_text

EXIT_OK = 0
EXIT_INVALID = 1

SpecCheck = Callable[..., list[Problem]]


def validate(args: argparse.Namespace) -> int:
    path = resolve_config_path(args.config)
    if not path.is_file():
        why = "is a directory" if path.is_dir() else "not found"
        print(f"castproxy validate: config file {why}: {path} (pass -c FILE or set {CONFIG_ENV})", file=sys.stderr)
        return EXIT_INVALID
    try:
        loaded = load_config(path)
    except ConfigError as exc:
        _print_problems(exc.problems, path)
        return EXIT_INVALID
    problems = list(loaded.warnings)
    counts: dict[str, int] = {}  # tools per workspace, once its spec compiled
    try:
        problems += _spec_check()(loaded, offline=args.offline, counts=counts)
    except ConfigError as exc:
        problems += exc.problems
    _print_problems(problems, path)
    if any(problem.severity == "error" for problem in problems):
        return EXIT_INVALID
    _print_summary(loaded, path, counts, offline=args.offline)
    return EXIT_OK


def schema(args: argparse.Namespace) -> int:
    sys.stdout.write(schema_text())
    return EXIT_OK


def _spec_check() -> SpecCheck:
    """castproxy.openapi.check.check_config (imported here: the openapi package builds on this one)."""
    from castproxy.openapi.check import check_config

    return check_config


def _print_problems(problems: list[Problem], path: Path) -> None:
    shown = str(path)
    absolute = str(path.absolute())
    unique = dict.fromkeys(replace(p, file=shown) if p.file == absolute else p for p in problems)
    for problem in sorted(unique, key=lambda p: (p.file, p.line, p.column)):
        print(problem)


def _print_summary(loaded: LoadedConfig, path: Path, counts: dict[str, int], *, offline: bool) -> None:
    for name, workspace in loaded.config.workspaces.items():
        # A spec not fetched (--offline) has no count: then the entries are counted, if they are all operationIds.
        explicit = all(not isinstance(entry, ToolSelector) and entry != ALL_OPERATIONS for entry in workspace.tools)
        known = counts.get(name, len(workspace.tools) if explicit else None)
        tools = _count(known, "tool") if known is not None else "tools by selector, not counted"
        mode = ", discovery search" if workspace.discovery == "search" else ""
        print(f"ok: workspace '{name}' ({_describe_auth(workspace)}, {tools}{mode}) at {loaded.public_url}/mcp/{name}")
    redirect_uri_needed = any(
        isinstance(w.auth, OAuth2Auth) and w.auth.grant == "authorization_code"
        for w in loaded.config.workspaces.values()
    )
    if redirect_uri_needed:
        print(f"register this redirect URI at the upstream OAuth server: {loaded.callback_url}")
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
