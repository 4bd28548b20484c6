"""`castproxy validate` and `castproxy schema`.

validate prints one `FILE:LINE:COL: message` line per problem (warnings as `... warning: ...`) and
exits 1 when any is an error; on success, one OK line per workspace and the redirect URI to register
at each upstream OAuth server. Spec checks (specs load, operationIds exist) come from
castproxy.openapi.check; online, each oauth2 `issuer`'s discovery metadata is checked (config/issuers.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from castproxy.config.loader import CONFIG_ENV, LoadedConfig, load_config, resolve_config_path
from castproxy.config.model import OAuth2Auth, Workspace
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
    try:
        problems += _spec_check()(loaded, offline=args.offline)
    except ConfigError as exc:
        problems += exc.problems
    if not args.offline:
        problems += _issuer_check()(loaded)
    _print_problems(problems, path)
    if any(problem.severity == "error" for problem in problems):
        return EXIT_INVALID
    _print_summary(loaded, path, offline=args.offline)
    return EXIT_OK


def schema(args: argparse.Namespace) -> int:
    sys.stdout.write(schema_text())
    return EXIT_OK


def _spec_check() -> SpecCheck:
    """castproxy.openapi.check.check_config (imported here: the openapi package builds on this one)."""
    from castproxy.openapi.check import check_config

    return check_config


def _issuer_check() -> Callable[[LoadedConfig], list[Problem]]:
    """castproxy.config.issuers.check_issuers (imported here: it uses the auth package, which builds on this one)."""
    from castproxy.config.issuers import check_issuers

    return check_issuers


def _print_problems(problems: list[Problem], path: Path) -> None:
    shown = str(path)
    absolute = str(path.absolute())
    unique = dict.fromkeys(replace(p, file=shown) if p.file == absolute else p for p in problems)
    for problem in sorted(unique, key=lambda p: (p.file, p.line, p.column)):
        print(problem)


def _print_summary(loaded: LoadedConfig, path: Path, *, offline: bool) -> None:
    for name, workspace in loaded.config.workspaces.items():
        print(f"ok: workspace '{name}' ({_describe_auth(workspace)}, {_count(len(workspace.tools), 'tool')}) "
              f"at {loaded.public_url}/mcp/{name}")
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
