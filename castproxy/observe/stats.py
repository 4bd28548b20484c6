"""Per-tool call statistics of this process, minute by minute, for the admin page's table and charts.

Each (workspace, tool) keeps totals since start and a ring of the last `MINUTES` one-minute buckets
(calls, errors, summed and longest duration). Recording is a few additions on the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["CallStats", "Minute"]

MINUTES = 60
MAX_TOOLS = 20_000  # (workspace, tool) pairs kept; tool names come from the config, so this is generous


@dataclass(slots=True)
class Minute:
    minute: int = -1  # minutes since the epoch this bucket holds
    calls: int = 0
    errors: int = 0
    seconds: float = 0.0
    longest: float = 0.0


@dataclass(slots=True)
class ToolStats:
    calls: int = 0
    errors: int = 0
    seconds: float = 0.0
    last_at: float = 0.0
    minutes: list[Minute] = field(default_factory=lambda: [Minute() for _ in range(MINUTES)])

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0

    @property
    def mean_ms(self) -> float:
        return self.seconds * 1000 / self.calls if self.calls else 0.0

    def series(self, now: float) -> list[Minute]:
        """The last MINUTES minutes, oldest first (empty minutes as zeros)."""
        current = int(now // 60)
        found = []
        for minute in range(current - MINUTES + 1, current + 1):
            bucket = self.minutes[minute % MINUTES]
            found.append(bucket if bucket.minute == minute else Minute(minute))
        return found


class CallStats:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.tools: dict[tuple[str, str], ToolStats] = {}
        self.started = clock()

    def record(self, workspace: str, tool: str, ok: bool, seconds: float) -> None:
        key = (workspace, tool)
        stats = self.tools.get(key)
        if stats is None:
            if len(self.tools) >= MAX_TOOLS:
                return
            stats = self.tools[key] = ToolStats()
        now = self._clock()
        stats.calls += 1
        stats.seconds += seconds
        stats.last_at = now
        minute = int(now // 60)
        bucket = stats.minutes[minute % MINUTES]
        if bucket.minute != minute:
            bucket.minute, bucket.calls, bucket.errors, bucket.seconds, bucket.longest = minute, 0, 0, 0.0, 0.0
        bucket.calls += 1
        bucket.seconds += seconds
        if seconds > bucket.longest:
            bucket.longest = seconds
        if not ok:
            stats.errors += 1
            bucket.errors += 1

    def of(self, workspace: str) -> dict[str, ToolStats]:
        return {tool: stats for (name, tool), stats in self.tools.items() if name == workspace}

    def now(self) -> float:
        return self._clock()
