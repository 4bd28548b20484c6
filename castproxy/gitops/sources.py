"""The sides of a comparison: a config compiled now, the same config as of a git revision, or its lock.

Configs load without their secrets; a revision is materialised with `git show` into a temporary folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from castproxy.config.loader import LoadedConfig, load_config
from castproxy.config.model import Workspace
from castproxy.config.problems import ConfigError, Problem
from castproxy.config.source import parse_yaml
from castproxy.errors import CastproxyError
from castproxy.gitops.lockfile import DIGEST_PREFIX, Inventory, WorkspaceRecord, sorted_inventory, tool_record
from castproxy.openapi.loader import is_url, safe_url
from castproxy.openapi.workspace import WorkspaceError, WorkspaceTools, compile_workspace

GIT_TIMEOUT = 60
MAX_EXTRACTED_FILES = 500
_SPEC_SUFFIXES = (".json", ".yaml", ".yml")
_NON_LOCAL_REF = re.compile(rb"""["']?\$ref["']?\s*:\s*["']?(?!#)[^\s"']""")


class GitError(CastproxyError):
    """git could not give what was asked (no repository, unknown revision, git missing)."""


def load_for_review(path: Path) -> LoadedConfig:
    """The config, with unresolvable secrets as placeholders; raises ConfigError like `validate`."""
    return load_config(path, need_secrets=False)


def workspace_record(name: str, workspace: Workspace, compiled: WorkspaceTools) -> WorkspaceRecord:
    source = safe_url(workspace.openapi) if is_url(workspace.openapi) else workspace.openapi
    server = None if workspace.base_url else safe_url(compiled.base_url)
    tools = tuple(sorted((tool_record(tool) for tool in compiled.tools), key=lambda t: t.name))
    return WorkspaceRecord(name, source, DIGEST_PREFIX + compiled.spec_digest, server, tools)


def compile_records(
    loaded: LoadedConfig, names: Collection[str] | None = None
) -> tuple[list[WorkspaceRecord], list[Problem]]:
    """Records of the workspaces (all, or those in `names`), and the problems of those that failed."""
    records: list[WorkspaceRecord] = []
    problems: list[Problem] = []
    for name, workspace in loaded.config.workspaces.items():
        if names is not None and name not in names:
            continue
        try:
            compiled = compile_workspace(workspace, loaded.base_dir, name=name)
        except WorkspaceError as exc:
            problems.extend(loaded.problem(loc, message) for loc, message in exc.problems)
            continue
        records.append(workspace_record(name, workspace, compiled))
    return records, problems


def inventory_of(loaded: LoadedConfig) -> Inventory:
    """Every workspace compiled now; raises ConfigError with every workspace's problems."""
    records, problems = compile_records(loaded)
    if problems:
        raise ConfigError(problems)
    return sorted_inventory(records)


def with_definitions(locked: Inventory, known: Inventory) -> Inventory:
    """`locked` with the published definitions of `known` attached where name and digest agree."""
    found = {
        (workspace.name, tool.name, tool.digest): tool.definition
        for workspace in known.workspaces for tool in workspace.tools if tool.definition is not None
    }
    workspaces = []
    for workspace in locked.workspaces:
        tools = tuple(
            replace(tool, definition=found.get((workspace.name, tool.name, tool.digest), tool.definition))
            for tool in workspace.tools
        )
        workspaces.append(replace(workspace, tools=tools))
    return Inventory(tuple(workspaces))


def committed_definitions(config_path: Path, locked: Inventory, current: Inventory) -> Inventory:
    """`locked`, with the definitions of its tools where the committed (HEAD) config still gives them.

    The lock holds digests only; for its tools to be compared argument by argument, their definitions
    must come from somewhere. The usual case is a work tree whose uncommitted edits changed the tools:
    HEAD's config and specs give back the locked definitions (checked digest by digest)."""
    now = current.by_name()
    differing = [w.name for w in locked.workspaces if w.name in now and w.tools != now[w.name].tools]
    if not differing:
        return locked
    try:
        with git_revision(config_path, "HEAD") as old:
            if old is None:
                return locked
            records, _ = compile_records(load_for_review(old.config), differing)
    except (GitError, ConfigError):
        return locked  # best effort: the comparison then says the details are unavailable
    return with_definitions(locked, Inventory(tuple(records)))


# --- git -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Repository:
    top: Path
    config: PurePosixPath  # the config's path inside the repository


def _git(args: list[str], cwd: Path) -> bytes:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed (or not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {GIT_TIMEOUT} s") from None
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(detail[-1] if detail else f"git {args[0]} failed (exit {result.returncode})")
    return result.stdout


def _exists(rev: str, path: PurePosixPath, top: Path) -> bool:
    try:
        _git(["cat-file", "-e", f"{rev}:{path}"], top)
    except GitError:
        return False
    return True


def _repository(config_path: Path) -> _Repository:
    folder = config_path.absolute().parent
    if not folder.is_dir():
        raise GitError(f"{folder} is not a folder")
    top = Path(_git(["rev-parse", "--show-toplevel"], folder).decode("utf-8").strip())
    try:
        inside = (folder.resolve() / config_path.name).relative_to(top.resolve())
    except ValueError:
        raise GitError(f"{config_path} is not inside the git repository at {top}") from None
    return _Repository(top, PurePosixPath(inside.as_posix()))


@dataclass(frozen=True)
class RevisionCopy:
    """A config as of a git revision, copied into `root` (a temporary folder) with its local specs."""

    config: Path
    root: Path
    rev: str
    label: str  # "REV:path/in/repo/cast.yaml", how messages name the copied config

    def relabel(self, problems: list[Problem]) -> list[Problem]:
        """Problems found in the copy, naming `REV:path` instead of the temporary path."""
        prefix = str(self.root) + os.sep
        return [
            replace(p, file=f"{self.rev}:{p.file[len(prefix):]}") if p.file.startswith(prefix) else p
            for p in problems
        ]


@contextmanager
def git_revision(config_path: Path, rev: str) -> Iterator[RevisionCopy | None]:
    """The config as it was at `rev`, with its local spec files, in a temporary folder (removed after).

    None when the config did not exist at `rev` (everything in it is then new)."""
    repo = _repository(config_path)
    try:
        _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], repo.top)
    except GitError:
        raise GitError(f"unknown git revision {rev!r}") from None
    if not _exists(rev, repo.config, repo.top):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="castproxy-diff-") as temporary:
        root = Path(temporary)
        config_text = _extract(rev, repo.config, repo.top, root)
        for spec in _local_specs(config_text, repo.config):
            if not _exists(rev, spec, repo.top):
                continue  # compiling reports the missing file
            raw = _extract(rev, spec, repo.top, root)
            if _NON_LOCAL_REF.search(raw):
                _extract_folder(rev, spec.parent, repo.top, root)
        yield RevisionCopy(root.joinpath(*repo.config.parts), root, rev, f"{rev}:{repo.config}")


def _extract(rev: str, path: PurePosixPath, top: Path, root: Path) -> bytes:
    raw = _git(["show", f"{rev}:{path}"], top)
    target = root.joinpath(*path.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(raw)
    return raw


def _extract_folder(rev: str, folder: PurePosixPath, top: Path, root: Path) -> None:
    """The JSON/YAML files under `folder` at `rev` (a spec's `$ref`s may point at any of them)."""
    listing = _git(["ls-tree", "-r", "-z", "--name-only", rev, "--", str(folder)], top)
    names = [name for name in listing.decode("utf-8", "replace").split("\0") if name.endswith(_SPEC_SUFFIXES)]
    for name in names[:MAX_EXTRACTED_FILES]:
        if not root.joinpath(*PurePosixPath(name).parts).exists():
            _extract(rev, PurePosixPath(name), top, root)


def _local_specs(config_text: bytes, config: PurePosixPath) -> list[PurePosixPath]:
    """Repository paths of the local spec files the config names (URLs and paths outside are left out)."""
    data = parse_yaml(config_text.decode("utf-8-sig", "replace")).data
    workspaces = data.get("workspaces") if isinstance(data, dict) else None
    specs: list[PurePosixPath] = []
    for workspace in workspaces.values() if isinstance(workspaces, dict) else ():
        source = workspace.get("openapi") if isinstance(workspace, dict) else None
        if not isinstance(source, str) or is_url(source) or "${" in source or os.path.isabs(source):
            continue
        joined = os.path.normpath(os.path.join(str(config.parent), source))
        if joined.startswith(".."):
            continue  # outside the repository: git has no copy of it
        specs.append(PurePosixPath(joined.replace(os.sep, "/")))
    return specs


__all__ = [
    "GitError", "RevisionCopy", "committed_definitions", "compile_records", "git_revision", "inventory_of",
    "load_for_review", "with_definitions", "workspace_record",
]
