"""`castproxy lock` and `castproxy diff` (exit codes: docs/gitops.md)."""

from __future__ import annotations

import argparse
import os
import stat
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from castproxy.config.loader import CONFIG_ENV, resolve_config_path
from castproxy.config.problems import ConfigError, Problem
from castproxy.gitops.changes import Comparison, compare
from castproxy.gitops.lockfile import Inventory, LockError, lock_path, parse_lock, read_lock, render_lock
from castproxy.gitops.report import render
from castproxy.gitops.sources import GitError, committed_definitions, git_revision, inventory_of, load_for_review

__all__ = ["diff", "lock"]

EXIT_OK = 0
EXIT_INVALID = 1


class _Failed(Exception):
    """The command cannot go on; what to print has been printed."""


def _config_path(option: str | None, command: str) -> Path:
    path = resolve_config_path(option)
    if not path.is_file():
        why = "is a directory" if path.is_dir() else "not found"
        print(f"castproxy {command}: config file {why}: {path} (pass -c FILE or set {CONFIG_ENV})", file=sys.stderr)
        raise _Failed
    return path


def _print_problems(problems: list[Problem], path: Path | None = None) -> None:
    """The errors, naming the config as the user wrote its path (as `validate` does)."""
    absolute = str(path.absolute()) if path is not None else None
    for problem in problems:
        if problem.severity == "error":
            print(replace(problem, file=str(path)) if problem.file == absolute else problem, file=sys.stderr)


def _inventory(path: Path) -> Inventory:
    try:
        return inventory_of(load_for_review(path))
    except ConfigError as exc:
        _print_problems(exc.problems, path)
        raise _Failed from None


def _write_atomically(path: Path, text: str) -> None:
    """Readers (a running serve) see the old lock or the new one, never half of it."""
    temporary: Path | None = None
    try:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        temporary = Path(name)
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        # mkstemp makes the file private; a lock is no secret, and keeps the mode it had.
        os.chmod(temporary, stat.S_IMODE(path.stat().st_mode) if path.is_file() else 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
        print(f"castproxy lock: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        raise _Failed from None


def lock(args: argparse.Namespace) -> int:
    try:
        return _lock(args)
    except _Failed:
        return EXIT_INVALID


def _lock(args: argparse.Namespace) -> int:
    path = _config_path(args.config, "lock")
    current = _inventory(path)
    target = lock_path(path)
    text = render_lock(current, path.name)
    try:
        existing: str | None = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = None
    except (OSError, UnicodeDecodeError) as exc:
        if args.check:
            print(f"castproxy lock: cannot read {target}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
            return EXIT_INVALID
        existing = None  # written anew below (or the write says why it cannot be)
    tools = sum(len(workspace.tools) for workspace in current.workspaces)
    summary = f"{len(current.workspaces)} workspace{'s' if len(current.workspaces) != 1 else ''}, " \
              f"{tools} tool{'s' if tools != 1 else ''}"
    if not args.check:
        if existing == text:
            print(f"{target}: up to date ({summary})")
        else:
            _write_atomically(target, text)
            print(f"wrote {target} ({summary})")
        return EXIT_OK
    if existing is None:
        print(f"{target}: no lock file; run `castproxy lock -c {path}` and commit {target.name}", file=sys.stderr)
        return EXIT_INVALID
    if existing == text:
        print(f"{target}: in sync with {path.name} ({summary})")
        return EXIT_OK
    try:
        locked = parse_lock(existing, target)
    except LockError as exc:
        _print_problems(exc.problems)
        return EXIT_INVALID
    comparison = compare(committed_definitions(path, locked, current), current, target.name, path.name)
    sys.stdout.write(render(comparison, "text"))
    if not comparison.changes and not comparison.notes:
        print(f"{target} differs from what `castproxy lock` writes (edited by hand?)")
    print(f"{target} is out of date: review the changes, then run `castproxy lock -c {path}` and commit "
          f"{target.name}", file=sys.stderr)
    return EXIT_INVALID


def diff(args: argparse.Namespace) -> int:
    try:
        comparison = _diff(args)
    except _Failed:
        return EXIT_INVALID
    sys.stdout.write(render(comparison, args.format))
    return comparison.exit_code


def _diff(args: argparse.Namespace) -> Comparison:
    if args.configs:
        old_name, new_name = args.configs
        old_path, new_path = _config_path(old_name, "diff"), _config_path(new_name, "diff")
        return compare(_inventory(old_path), _inventory(new_path), old_name, new_name)
    path = _config_path(args.config, "diff")
    if args.git:
        return _against_revision(path, args.git)
    target = lock_path(path)
    try:
        locked = read_lock(target)
    except LockError as exc:
        _print_problems(exc.problems)
        raise _Failed from None
    if locked is None:
        print(f"castproxy diff: no lock file {target}; run `castproxy lock -c {path}` first, or compare "
              "two configs (diff OLD NEW) or a git revision (diff --git REV)", file=sys.stderr)
        raise _Failed
    current = _inventory(path)
    return compare(committed_definitions(path, locked, current), current, target.name, path.name)


def _against_revision(path: Path, rev: str) -> Comparison:
    try:
        with git_revision(path, rev) as old:
            if old is None:
                return compare(Inventory(()), _inventory(path), f"{rev}:{path.name} (absent)", str(path))
            try:
                before = inventory_of(load_for_review(old.config))
            except ConfigError as exc:
                _print_problems(old.relabel(exc.problems))
                raise _Failed from None
            return compare(before, _inventory(path), old.label, str(path))
    except GitError as exc:
        print(f"castproxy diff --git: {exc}", file=sys.stderr)
        raise _Failed from None
