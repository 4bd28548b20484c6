"""Hot reload: watch the config (and local spec files), rebuild off the event loop, swap whole or not at all.

We watch DIRECTORIES, not files: editors save by renaming a temp file over the original, and a
Kubernetes ConfigMap update swaps the `..data` symlink, and a watch on the old file would see
neither. Events are filtered to the config file, `..data` and the referenced spec files. SIGHUP
triggers the same reload. A bad config is logged with FILE:LINE:COL and the last good one keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import anyio
import anyio.to_thread
from watchfiles import Change, awatch

from castproxy.config.problems import ConfigError
from castproxy.gitops.lockfile import lock_path
from castproxy.openapi.loader import is_url
from castproxy.serve.snapshot import Snapshot
from castproxy.serve.state import ServeState

log = logging.getLogger(__name__)

CONFIGMAP_LINK = "..data"
# Group the bursts of events one save produces; short enough that an edit is served within ~0.3 s.
STEP_MS = 50
DEBOUNCE_MS = 300


class ReloadObserver(Protocol):
    """What hears of each reload (castproxy.observe.Observer: the audit record and the reloads counter)."""

    def record_reload(self, ok: bool, *, snapshot: Snapshot | None = None, problems: tuple[str, ...] = ()) -> None: ...


class Reloader:
    def __init__(
        self, config_path: Path, state: ServeState, build: Callable[[], Snapshot], metrics: ReloadObserver
    ) -> None:
        # Not resolved: behind a ConfigMap the resolved path is a versioned folder that the next update deletes.
        self.config_path = Path(os.path.abspath(config_path))
        self.state = state
        self.build = build
        self.metrics = metrics
        self._lock = asyncio.Lock()
        self._stopped = False
        self._wake = asyncio.Event()  # ends the current awatch: on stop, or to re-watch other folders
        self._current_targets: frozenset[tuple[str, str]] = frozenset()
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[bool]] = set()

    async def reload(self, reason: str) -> bool:
        """Load, validate and compile in a worker thread; install only a complete snapshot."""
        async with self._lock:  # one rebuild at a time; a later one reads the newest files anyway
            try:
                snapshot = await anyio.to_thread.run_sync(self.build)
            except ConfigError as exc:
                return self._rejected(reason, [str(problem) for problem in (exc.errors or exc.problems)])
            except Exception as exc:
                return self._rejected(reason, [f"{self.config_path}: cannot load: {type(exc).__name__}: {exc}"])
            old_targets = self.targets()
            self.state.install(snapshot)
            self.metrics.record_reload(True, snapshot=snapshot)
            log.info("config reloaded", extra={"fields": {"reason": reason, "workspaces": sorted(snapshot.workspaces)}})
            if self.targets() != old_targets:
                self._wake.set()  # a spec file moved: watch its new folder
            return True

    def _rejected(self, reason: str, problems: list[str]) -> bool:
        self.state.reject(problems)
        self.metrics.record_reload(False, problems=tuple(problems))
        log.error(
            "config rejected; the last good config keeps serving",
            extra={"fields": {"reason": reason, "problems": problems}},
        )
        return False

    def targets(self) -> frozenset[tuple[str, str]]:
        """(folder, file name) pairs whose change means a reload."""
        folder = str(self.config_path.parent)
        targets = {(folder, self.config_path.name), (folder, CONFIGMAP_LINK)}
        targets.add((folder, lock_path(self.config_path).name))  # cast.lock: a reviewed update may come alone
        for workspace in self.state.snapshot.loaded.config.workspaces.values():
            if not is_url(workspace.openapi):
                spec = Path(os.path.abspath(self.config_path.parent / workspace.openapi))
                targets.add((str(spec.parent), spec.name))
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
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=2)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
