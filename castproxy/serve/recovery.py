"""Background work that keeps workspaces current without a signal or an edit: retries and spec refreshes.

Degraded, stale and cached workspaces are retried with a jittered backoff, `refresh:` specs re-fetched;
both go through the reloader.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from castproxy.serve.snapshot import Snapshot

__all__ = ["Backoff", "Scheduler"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0
    maximum: float = 60.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds before retry number `attempt` (0-based): doubling, capped, jittered down by up to half."""
        base: float = min(self.maximum, self.initial * 2.0 ** min(attempt, 32))
        return base * rng.uniform(0.5, 1.0)


Rebuild = Callable[[Collection[str]], Awaitable[None]]


class Scheduler:
    def __init__(
        self,
        retry: Rebuild,
        refresh: Rebuild,
        current: Callable[[], Snapshot],
        backoff: Backoff | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._retry = retry
        self._refresh = refresh
        self._current = current
        self.backoff = backoff or Backoff()
        self._clock = clock
        self._rng = rng or random.Random()
        self._attempts: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}
        self._refresh_at: dict[str, float] = {}
        self._retrying: set[str] = set()  # being rebuilt right now
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def installed(self, snapshot: Snapshot, built: Collection[str] | None) -> None:
        """A snapshot was swapped in; `built`: the workspaces that build attempted (None: all of them)."""
        now = self._clock()
        names = set(snapshot.status) if built is None else set(built)
        for gone in set(self._retry_at) | set(self._refresh_at) | set(self._attempts):
            if gone not in snapshot.status:
                self._forget(gone)
        for name in names & set(snapshot.status):
            status = snapshot.status[name]
            if status.needs_retry:
                attempt = self._attempts.get(name, 0)
                self._attempts[name] = attempt + 1
                self._retry_at[name] = now + self.backoff.delay(attempt, self._rng)
                self._refresh_at.pop(name, None)
                continue
            self._attempts.pop(name, None)
            self._retry_at.pop(name, None)
            self._plan_refresh(snapshot, name, now)
        self._wake.set()

    def _plan_refresh(self, snapshot: Snapshot, name: str, now: float) -> None:
        status = snapshot.status.get(name)
        if status is not None and not status.needs_retry and status.spec_url and status.config.refresh:
            self._refresh_at[name] = now + status.config.refresh
        else:
            self._refresh_at.pop(name, None)

    def _forget(self, name: str) -> None:
        self._attempts.pop(name, None)
        self._retry_at.pop(name, None)
        self._refresh_at.pop(name, None)

    def retry_in(self, name: str) -> float | None:
        """Seconds until `name` is tried again (None when no retry is planned)."""
        if name in self._retrying:
            return 0.0
        due = self._retry_at.get(name)
        return None if due is None else max(0.0, due - self._clock())

    def refresh_in(self, name: str) -> float | None:
        """Seconds until `name`'s spec is fetched again (None without `refresh:`)."""
        due = self._refresh_at.get(name)
        return None if due is None else max(0.0, due - self._clock())

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="castproxy-workspace-recovery")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            pending = [*self._retry_at.values(), *self._refresh_at.values()]
            if pending:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, min(pending) - self._clock()))
            else:
                await self._wake.wait()
            now = self._clock()
            retry = sorted(name for name, due in self._retry_at.items() if due <= now)
            refresh = sorted(name for name, due in self._refresh_at.items() if due <= now)
            for name in retry:
                del self._retry_at[name]  # re-planned by `installed`, or on the next failure
            self._retrying = set(retry)
            for name in refresh:
                del self._refresh_at[name]
            try:
                if retry:
                    await self._retry(retry)
                if refresh:
                    await self._refresh(refresh)
                    for name in refresh:  # unchanged specs install nothing: plan the next look here
                        if name not in self._refresh_at and name not in self._retry_at:
                            self._plan_refresh(self._current(), name, self._clock())
            except Exception as exc:  # never let the loop die: the next due time tries again
                log.error("background workspace rebuild failed", extra={"fields": {
                    "workspaces": retry + refresh, "error_type": type(exc).__name__}})
                for name in retry:
                    self._retry_at.setdefault(name, self._clock() + self.backoff.maximum)
            finally:
                self._retrying = set()
