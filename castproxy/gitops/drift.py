"""Drift at serve time: each workspace's compiled tools against the lock beside the config.

`LockGuard` runs inside every snapshot build; `server.lock` says what drift does (docs/architecture.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from castproxy.config.model import Workspace
from castproxy.config.problems import ConfigError, Problem
from castproxy.gitops.changes import compare
from castproxy.gitops.lockfile import (
    DIGEST_PREFIX,
    Inventory,
    LockError,
    WorkspaceRecord,
    lock_path,
    read_lock,
    tool_record,
)
from castproxy.gitops.report import sentence
from castproxy.gitops.sources import with_definitions
from castproxy.openapi.loader import cached_document, is_url, safe_url

__all__ = ["DriftReport", "LockGuard", "lock_problems"]

if TYPE_CHECKING:
    from castproxy.config.loader import LoadedConfig
    from castproxy.serve.snapshot import Snapshot, WorkspaceRuntime

log = logging.getLogger(__name__)

State = Literal["in-sync", "drifted", "not-locked"]
Serving = Literal["compiled", "reviewed", "none"]
MAX_LOGGED_CHANGES = 20


@dataclass(frozen=True)
class WorkspaceDrift:
    state: State
    serving: Serving  # compiled: what the spec gives now | reviewed: the locked tools | none: refused
    changes: tuple[str, ...] = ()  # "createItem: argument `tags` is now required", ...


@dataclass(frozen=True)
class DriftReport:
    """What one snapshot found, for /readyz, /metrics (castproxy.observe) and the log."""

    mode: str
    lock: str  # the lock file's path
    workspaces: Mapping[str, WorkspaceDrift] = field(default_factory=dict)
    problem: str | None = None  # the lock could not be read (warn mode serves on)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "file": self.lock,
            "mode": self.mode,
            "drifted": sorted(name for name, item in self.workspaces.items() if item.state != "in-sync"),
            "workspaces": {
                name: {"state": item.state, "serving": item.serving, "changes": list(item.changes)}
                for name, item in sorted(self.workspaces.items())
            },
        }
        if self.problem:
            body["problem"] = self.problem
        return body


def runtime_record(name: str, workspace: Workspace, runtime: WorkspaceRuntime) -> WorkspaceRecord:
    """What a built workspace serves, as lock records (definitions included)."""
    records = tuple(sorted((tool_record(tool.definition) for tool in runtime.tools.values()), key=lambda t: t.name))
    source = safe_url(workspace.openapi) if is_url(workspace.openapi) else workspace.openapi
    server = None if workspace.base_url else safe_url(runtime.base_url)
    return WorkspaceRecord(name, source, "", server, records)


def _missing_lock(loaded: LoadedConfig, path: Path) -> Problem:
    return loaded.problem(("server", "lock"), f"server.lock is enforce, but there is no lock file {path.name} "
                          "beside the config; review the tools and write it with `castproxy lock`")


def lock_problems(loaded: LoadedConfig) -> list[Problem]:
    """What would stop `serve` under `server.lock: enforce` (so `validate` says it before a deploy)."""
    if loaded.config.server.lock != "enforce":
        return []
    path = lock_path(loaded.path)
    try:
        present = read_lock(path) is not None
    except LockError as exc:
        return list(exc.problems)
    return [] if present else [_missing_lock(loaded, path)]


def _same(locked: WorkspaceRecord, served: WorkspaceRecord) -> bool:
    return locked.tools == served.tools and locked.server == served.server


class LockGuard:
    """One snapshot build's view of the lock: reviews each workspace as it is built."""

    def __init__(self, mode: str, path: Path, locked: Inventory | None, problem: str | None = None) -> None:
        self.mode = mode
        self.path = path
        self.locked = locked.by_name() if locked is not None else {}
        self.problem = problem
        self.drift: dict[str, WorkspaceDrift] = {}
        self.unavailable: dict[str, str] = {}

    @classmethod
    def for_config(cls, loaded: LoadedConfig) -> LockGuard | None:
        """None when there is nothing to guard (off, or warn without a lock); raises ConfigError for
        enforce without a readable lock (then nothing reviewed could be served)."""
        mode = loaded.config.server.lock
        if mode == "off":
            return None
        path = lock_path(loaded.path)
        try:
            locked = read_lock(path)
        except LockError as exc:
            if mode == "enforce":
                raise
            log.error("the lock file cannot be read; serving the compiled tools (server.lock: warn)",
                      extra={"fields": {"lock": str(path), "problems": [str(p) for p in exc.problems]}})
            return cls(mode, path, None, problem="; ".join(str(p) for p in exc.problems))
        if locked is None:
            if mode == "enforce":
                raise ConfigError([_missing_lock(loaded, path)])
            return None
        return cls(mode, path, locked)

    def review(
        self,
        name: str,
        workspace: Workspace,
        runtime: WorkspaceRuntime,
        previous: Snapshot | None,
        rebuild: Callable[[dict[str, Any]], WorkspaceRuntime],
    ) -> WorkspaceRuntime | None:
        """The runtime to serve for this workspace (None: refuse it), after comparing it with the lock."""
        if self.problem is not None:
            self.drift[name] = WorkspaceDrift("drifted", "compiled", (f"the lock cannot be read: {self.problem}",))
            return runtime
        locked = self.locked.get(name)
        if locked is None:
            return self._not_locked(name, runtime)
        served = runtime_record(name, workspace, runtime)
        if _same(locked, served):
            self.drift[name] = WorkspaceDrift("in-sync", "compiled")
            return runtime
        before = previous.workspaces.get(name) if previous is not None else None
        if self.mode != "enforce":
            known = [runtime_record(name, workspace, before)] if before is not None else []
            changes = _sentences(locked, known, served, self.path)
            self.drift[name] = WorkspaceDrift("drifted", "compiled", changes)
            self._log(logging.WARNING, "workspace tools differ from the lock; serving them (server.lock: warn)",
                      name, changes)
            return runtime
        reviewed = self._reviewed(name, workspace, runtime, locked, before, rebuild)
        if reviewed is not None:
            changes = _sentences(locked, [runtime_record(name, workspace, reviewed)], served, self.path)
            self.drift[name] = WorkspaceDrift("drifted", "reviewed", changes)
            self._log(logging.WARNING, "workspace tools differ from the lock; serving the reviewed tools "
                      "(server.lock: enforce)", name, changes)
            return reviewed
        changes = _sentences(locked, [], served, self.path)
        self.drift[name] = WorkspaceDrift("drifted", "none", changes)
        self.unavailable[name] = (
            f"workspace '{name}' is not served: its tools differ from {self.path.name} (server.lock: enforce) "
            "and the reviewed tools are not available in this process; review the changes (castproxy diff) "
            "and update the lock, or restore the reviewed spec"
        )
        self._log(logging.ERROR, "workspace tools differ from the lock and no reviewed tools are available; "
                  "the workspace answers 503 (server.lock: enforce)", name, changes)
        return None

    def _not_locked(self, name: str, runtime: WorkspaceRuntime) -> WorkspaceRuntime | None:
        changes = (f"workspace {name} is not in {self.path.name}",)
        if self.mode != "enforce":
            self.drift[name] = WorkspaceDrift("not-locked", "compiled", changes)
            self._log(logging.WARNING, "workspace is not in the lock; serving it (server.lock: warn)", name, changes)
            return runtime
        self.drift[name] = WorkspaceDrift("not-locked", "none", changes)
        self.unavailable[name] = (
            f"workspace '{name}' is not served: it is not in {self.path.name} (server.lock: enforce); review its "
            "tools and write the lock with `castproxy lock`"
        )
        self._log(logging.ERROR, "workspace is not in the lock; the workspace answers 503 (server.lock: enforce)",
                  name, changes)
        return None

    def _reviewed(
        self,
        name: str,
        workspace: Workspace,
        runtime: WorkspaceRuntime,
        locked: WorkspaceRecord,
        before: WorkspaceRuntime | None,
        rebuild: Callable[[dict[str, Any]], WorkspaceRuntime],
    ) -> WorkspaceRuntime | None:
        """A runtime with the current settings and the locked tools, if they can still be had: the
        previous snapshot's (when it served them), else rebuilt from the locked spec document."""
        if before is not None and _same(locked, runtime_record(name, workspace, before)):
            base_url = runtime.base_url if workspace.base_url else before.base_url
            return replace(runtime, tools=before.tools, listing=before.listing, base_url=base_url)
        document = cached_document(locked.spec_digest.removeprefix(DIGEST_PREFIX))
        if document is None:
            return None
        try:
            candidate = rebuild(document)
        except Exception as exc:  # catch-all on purpose: whatever stops serve's rebuild, there is nothing to serve
            log.warning("the reviewed spec could not be rebuilt", extra={"fields": {"workspace": name,
                                                                                    "error": str(exc)}})
            return None
        return candidate if _same(locked, runtime_record(name, workspace, candidate)) else None

    def _log(self, level: int, message: str, name: str, changes: tuple[str, ...]) -> None:
        shown = list(changes[:MAX_LOGGED_CHANGES])
        if len(changes) > len(shown):
            shown.append(f"... and {len(changes) - len(shown)} more")
        log.log(level, message, extra={"fields": {"workspace": name, "lock": str(self.path), "mode": self.mode,
                                                  "changes": shown}})

    def report(self) -> DriftReport:
        return DriftReport(self.mode, str(self.path), MappingProxyType(dict(self.drift)), self.problem)


def _sentences(
    locked: WorkspaceRecord, known: list[WorkspaceRecord], served: WorkspaceRecord, path: Path
) -> tuple[str, ...]:
    """The drift in words; argument by argument where `known` gives the locked definitions."""
    old = with_definitions(Inventory((locked,)), Inventory(tuple(known)))
    comparison = compare(old, Inventory((served,)), path.name, "served")
    return tuple(f"{change.tool}: {sentence(change)}" if change.tool else sentence(change)
                 for change in comparison.changes)
