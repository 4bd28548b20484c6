"""Hot reload: watch the config, local spec files and `${file:}` secrets; rebuild off the event loop; swap whole.

Folders are watched, not files (editors rename, Kubernetes swaps `..data`); SIGHUP reloads too. A config
invalid as a whole is logged and the last good one keeps serving.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Collection
from pathlib import Path
from typing import Protocol

import anyio
import anyio.to_thread
from watchfiles import Change, awatch

from castproxy.config.problems import ConfigError
from castproxy.gitops.lockfile import lock_path
from castproxy.openapi.loader import is_url
from castproxy.serve.builds import Builds
from castproxy.serve.recovery import Backoff, Scheduler
from castproxy.serve.snapshot import Snapshot
from castproxy.serve.state import ServeState

__all__ = ["Reloader"]

log = logging.getLogger(__name__)

CONFIGMAP_LINK = "..data"
# Group the bursts of events one save produces; short enough that an edit is served within ~0.3 s.
STEP_MS = 50
DEBOUNCE_MS = 300


class ReloadObserver(Protocol):
    """What hears of each reload and each snapshot installed (castproxy.observe.Observer: the audit trail,
    the reloads counter, the lock drift gauge)."""

    def record_reload(self, ok: bool, *, workspaces: int | None = None, problems: tuple[str, ...] = ()) -> None: ...

    def snapshot_installed(self, snapshot: Snapshot) -> None: ...


class Reloader:
    def __init__(
        self, config_path: Path, state: ServeState, builds: Builds, metrics: ReloadObserver,
        backoff: Backoff | None = None,
    ) -> None:
        # Not resolved: behind a ConfigMap the resolved path is a versioned folder that the next update deletes.
        self.config_path = Path(os.path.abspath(config_path))
        self.state = state
        self.builds = builds
        self.metrics = metrics
        self.scheduler = Scheduler(self._retry, self._refresh, lambda: self.state.snapshot, backoff)
        self._lock = asyncio.Lock()
        self._stopped = False
        self._wake = asyncio.Event()  # ends the current awatch: on stop, or to re-watch other folders
        self._current_targets: frozenset[tuple[str, str]] = frozenset()
        self._pending_files: frozenset[Path] = frozenset()  # secret files a rejected config could not read
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[bool]] = set()

    async def reload(self, reason: str) -> bool:
        """Load, validate and compile in a worker thread; install only a complete snapshot."""
        async with self._lock:  # one rebuild at a time; a later one reads the newest files anyway
            previous = self.state.snapshot
            try:
                snapshot = await anyio.to_thread.run_sync(self.builds.full, previous)
            except ConfigError as exc:
                self._watch_also(exc.files)
                return self._rejected(reason, [str(problem) for problem in (exc.errors or exc.problems)])
            except Exception as exc:  # any other failure of the build: reject it, the old snapshot keeps serving
                return self._rejected(reason, [f"{self.config_path}: cannot load: {type(exc).__name__}: {exc}"])
            self._watch_also(frozenset())
            self._install(previous, snapshot, None)
            self.metrics.record_reload(True, workspaces=len(snapshot.workspaces))
            log.info("config reloaded", extra={"fields": {"reason": reason, "workspaces": sorted(snapshot.workspaces)}})
            return True

    async def _retry(self, names: Collection[str]) -> None:
        """Build these workspaces again on the config already loaded (degraded, stale or on a cached spec)."""
        async with self._lock:
            previous = self.state.snapshot
            names = [name for name in names if name in previous.status]
            if names:
                snapshot = await anyio.to_thread.run_sync(self.builds.some, previous, names)
                self._install(previous, snapshot, names)

    async def _refresh(self, names: Collection[str]) -> None:
        """Re-fetch the remote specs of these workspaces; rebuild those whose spec changed."""
        async with self._lock:
            previous = self.state.snapshot
            fetcher = self.builds.fetcher()

            def changed() -> list[str]:
                found = []
                for name in names:
                    status = previous.status.get(name)
                    if status is None or not status.spec_url:
                        continue
                    try:
                        fetcher(status.spec_url)  # once per URL, conditional on the cached copy
                    except Exception as exc:  # a refresh is best effort: the next one tries again
                        log.debug("spec refresh failed", extra={"fields": {"workspace": name, "error": str(exc)}})
                        continue
                    outcome = fetcher.outcome(status.spec_url)
                    if outcome is not None and outcome.source == "network" and outcome.digest != status.spec_digest:
                        found.append(name)
                return found

            stale = await anyio.to_thread.run_sync(changed)
            if stale:
                snapshot = await anyio.to_thread.run_sync(self.builds.some, previous, stale, fetcher)
                self._install(previous, snapshot, stale)
                log.info("spec changed; workspaces rebuilt", extra={"fields": {"workspaces": stale}})

    def _install(self, previous: Snapshot, snapshot: Snapshot, built: Collection[str] | None) -> None:
        old_targets = self.targets()
        self.state.install(snapshot, partial=built is not None)
        self.metrics.snapshot_installed(snapshot)
        self.scheduler.installed(snapshot, built)
        self._log_changes(previous, snapshot, built)
        if self.targets() != old_targets:
            self._wake.set()  # a spec or secret file moved: watch its new folder

    def _log_changes(self, previous: Snapshot | None, snapshot: Snapshot, built: Collection[str] | None) -> None:
        """One line when a workspace changes state (not on every failed retry: /readyz shows those)."""
        for name in sorted(snapshot.status if built is None else built):
            status = snapshot.status.get(name)
            if status is None:
                continue
            old = previous.status.get(name) if previous is not None else None
            problems = [str(problem) for problem in status.problems]
            fields: dict[str, object] = {"workspace": name, "problems": problems}
            retry_in = self.scheduler.retry_in(name)
            if retry_in is not None:
                fields["retry_in_s"] = round(retry_in, 1)
            same = old is not None and old.state == status.state and old.problems == status.problems
            if status.state == "degraded":
                if same:
                    log.debug("workspace still degraded", extra={"fields": fields})
                else:
                    log.error("workspace degraded: it answers 503 and is retried in the background",
                              extra={"fields": fields})
            elif status.state == "stale":
                if same:
                    log.debug("workspace still on its previous version", extra={"fields": fields})
                else:
                    log.error("workspace kept its previous version: this version does not build; retrying in "
                              "the background", extra={"fields": fields})
            elif status.cached_at is not None:
                if not same:
                    log.warning("spec unreachable or unusable; serving its last good copy from the spec cache",
                                extra={"fields": fields})
            elif old is not None and old.needs_retry:
                log.info("workspace recovered", extra={"fields": {"workspace": name, "was": old.state}})

    def _rejected(self, reason: str, problems: list[str]) -> bool:
        self.state.reject(problems)
        self.metrics.record_reload(False, problems=tuple(problems))
        log.error(
            "config rejected; the last good config keeps serving",
            extra={"fields": {"reason": reason, "problems": problems}},
        )
        return False

    def _watch_also(self, files: frozenset[Path]) -> None:
        if files != self._pending_files:
            self._pending_files = files
            self._wake.set()

    def targets(self) -> frozenset[tuple[str, str]]:
        """(folder, file name) pairs whose change means a reload."""
        folder = str(self.config_path.parent)
        targets = {(folder, self.config_path.name), (folder, CONFIGMAP_LINK)}
        targets.add((folder, lock_path(self.config_path).name))  # cast.lock: a reviewed update may come alone
        loaded = self.state.snapshot.loaded
        for workspace in loaded.config.workspaces.values():
            if not is_url(workspace.openapi):
                spec = Path(os.path.abspath(self.config_path.parent / workspace.openapi))
                targets.add((str(spec.parent), spec.name))
        for secret in loaded.secret_files | self._pending_files:
            path = Path(os.path.abspath(secret))
            # A Kubernetes Secret volume updates by swapping `..data` in the file's folder.
            targets |= {(str(path.parent), path.name), (str(path.parent), CONFIGMAP_LINK)}
        return frozenset(targets)

    def _wanted(self, change: Change, path: str) -> bool:
        return (os.path.dirname(path), os.path.basename(path)) in self._current_targets

    async def watch(self) -> None:
        while not self._stopped:
            self._wake.clear()
            self._current_targets = self.targets()
            folders = sorted({folder for folder, _ in self._current_targets if os.path.isdir(folder)})
            try:
                async for changes in awatch(
                    *folders, watch_filter=self._wanted, step=STEP_MS, debounce=DEBOUNCE_MS,
                    stop_event=self._wake, recursive=False,
                ):
                    names = sorted({os.path.basename(path) for _, path in changes})
                    await self.reload(f"changed: {', '.join(names)}")
                    if self._wake.is_set():
                        break
            except (OSError, RuntimeError) as exc:  # e.g. a watched folder vanished: watch again shortly
                log.warning("config watch interrupted; restarting", extra={"fields": {"error": str(exc)}})
                await asyncio.sleep(1)

    def start(self, *, watch: bool) -> None:
        self.scheduler.installed(self.state.snapshot, None)
        self._log_changes(None, self.state.snapshot, None)
        self.scheduler.start()
        if watch:
            self._task = asyncio.create_task(self.watch(), name="castproxy-config-watch")
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_sighup)
        except (ValueError, RuntimeError, NotImplementedError):
            log.debug("SIGHUP reload not available (not the main thread)")

    def _on_sighup(self) -> None:
        task = asyncio.create_task(self.reload("SIGHUP"))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        await self.scheduler.stop()
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=2)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
