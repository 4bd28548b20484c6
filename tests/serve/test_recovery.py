"""The retry and refresh planner, on an injected clock: bounded, jittered, doubling; refreshes only when healthy."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

from castproxy.config.model import Workspace
from castproxy.serve.recovery import Backoff, Scheduler
from castproxy.serve.snapshot import WorkspaceStatus

REMOTE = Workspace(openapi="https://api.example.com/openapi.json", tools=["x"], refresh="10m")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def nothing(names: Any) -> None:
    return None


def snapshot(**states: WorkspaceStatus) -> Any:
    return SimpleNamespace(status=states)


def test_backoff_doubles_is_capped_and_jittered() -> None:
    backoff, rng = Backoff(initial=1.0, maximum=60.0), random.Random(7)
    for attempt, ceiling in [(0, 1), (1, 2), (2, 4), (5, 32), (6, 60), (40, 60)]:
        delays = [backoff.delay(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len({round(delay, 6) for delay in delays}) > 100  # spread, not one value for every proxy


def test_a_failing_workspace_is_retried_later_each_time_and_forgotten_once_healthy() -> None:
    clock = Clock()
    scheduler = Scheduler(nothing, nothing, lambda: snapshot(), Backoff(1.0, 60.0), clock=clock, rng=random.Random(1))
    degraded = WorkspaceStatus("degraded", REMOTE, spec_url=REMOTE.openapi)
    waits = []
    for _ in range(8):
        scheduler.installed(snapshot(api=degraded), ["api"])
        waits.append(scheduler.retry_in("api"))
    assert waits[0] is not None and 0.5 <= waits[0] <= 1.0
    assert all(wait is not None and wait <= 60 for wait in waits) and waits[-1] >= 30
    scheduler.installed(snapshot(api=degraded), ["other"])  # another workspace's retry: this plan stays
    assert scheduler.retry_in("api") == waits[-1]
    clock.now += 5
    assert scheduler.retry_in("api") == max(0.0, waits[-1] - 5)
    scheduler.installed(snapshot(api=WorkspaceStatus("serving", REMOTE, spec_url=REMOTE.openapi)), ["api"])
    assert scheduler.retry_in("api") is None
    scheduler.installed(snapshot(api=degraded), ["api"])
    assert (scheduler.retry_in("api") or 0) <= 1.0  # the count started again


def test_refresh_is_planned_only_for_healthy_remote_specs_with_refresh() -> None:
    clock = Clock()
    scheduler = Scheduler(nothing, nothing, lambda: snapshot(), clock=clock)
    local = Workspace(openapi="spec.json", tools=["x"])
    scheduler.installed(snapshot(
        remote=WorkspaceStatus("serving", REMOTE, spec_url=REMOTE.openapi),
        cached=WorkspaceStatus("serving", REMOTE, spec_url=REMOTE.openapi, cached_at=1.0),
        local=WorkspaceStatus("serving", local),
    ), None)
    assert [scheduler.refresh_in(name) for name in ("remote", "cached", "local")] == [600.0, None, None]
    assert scheduler.retry_in("cached") is not None  # a cached spec is retried, not refreshed
