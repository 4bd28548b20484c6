"""Rate limits on tool calls: per caller and in total, per workspace and per tool (the `limits` library).

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from castproxy.access.policy import Caller
from castproxy.config.model import RateLimit

__all__ = ["LimitPair", "RateLimits", "WorkspaceLimits", "rate_limits"]

if TYPE_CHECKING:
    from castproxy.config.loader import LoadedConfig

log = logging.getLogger("castproxy.access")


@dataclass(frozen=True, slots=True)
class LimitPair:
    """A `rate_limit` entry, parsed."""

    per_caller: RateLimitItem | None = None
    total: RateLimitItem | None = None

    @classmethod
    def of(cls, setting: RateLimit | None) -> LimitPair | None:
        if setting is None or (setting.per_caller is None and setting.total is None):
            return None
        return cls(parse(setting.per_caller) if setting.per_caller else None,
                   parse(setting.total) if setting.total else None)


@dataclass(frozen=True)
class WorkspaceLimits:
    workspace: LimitPair | None = None
    tools: Mapping[str, LimitPair] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refusal:
    scope: str  # per_caller | total | tool_per_caller | tool_total (the metrics label)
    retry_after: int  # seconds
    rate: str

    def message(self, tool: str) -> str:
        who = "for you" if self.scope.endswith("per_caller") else "for everyone together"
        what = f"tool '{tool}'" if self.scope.startswith("tool_") else "this workspace"
        return (f"Rate limit reached: {what} allows {self.rate} {who}. Tool '{tool}' was not called; "
                f"try again in {self.retry_after} s.")


def _rate(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return f"{item.amount} per {unit}" if item.multiples == 1 else f"{item.amount} per {item.multiples} {unit}s"


class RateLimits:
    """The process's counters: memory (one process) or Redis (shared by every replica)."""

    def __init__(self, storage: Storage, *, clock: Callable[[], float] = time.time) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._clock = clock

    @classmethod
    def in_memory(cls) -> RateLimits:
        return cls(MemoryStorage())

    @classmethod
    def redis(cls, url: str, *, prefix: str) -> RateLimits:
        scheme, rest = url.split("://", 1)
        storage = RedisStorage(f"async+{scheme}://{rest}", implementation="redispy", key_prefix=prefix,
                               wrap_exceptions=True)
        return cls(storage)

    async def check(self, workspace: str, tool: str, caller: Caller, limits: WorkspaceLimits) -> Refusal | None:
        """Count one call of `tool`; a Refusal (nothing counted past it) when a limit is reached."""
        who = caller.limit_key
        checks: list[tuple[str, RateLimitItem, tuple[str, ...]]] = []
        pair = limits.tools.get(tool)
        if pair is not None:
            if pair.per_caller is not None:
                checks.append(("tool_per_caller", pair.per_caller, (workspace, "tool", tool, who)))
            if pair.total is not None:
                checks.append(("tool_total", pair.total, (workspace, "tool", tool)))
        if limits.workspace is not None:
            if limits.workspace.per_caller is not None:
                checks.append(("per_caller", limits.workspace.per_caller, (workspace, "caller", who)))
            if limits.workspace.total is not None:
                checks.append(("total", limits.workspace.total, (workspace, "all")))
        try:
            for scope, item, identifiers in checks:
                if not await self._limiter.hit(item, *identifiers):
                    stats = await self._limiter.get_window_stats(item, *identifiers)
                    retry = max(1, math.ceil(stats.reset_time - self._clock()))
                    return Refusal(scope, retry, _rate(item))
        except Exception as exc:  # the counters' store is down: the call goes on (limits protect quotas, the
            # sign-in check already failed closed for callers who need one); said once per 10 s by the log filter
            log.warning("rate limits could not be counted; calls are not limited meanwhile",
                        extra={"fields": {"error_type": type(exc).__name__}})
        return None


def rate_limits(loaded: LoadedConfig, store: object) -> RateLimits:
    """The counters for this process: shared through Redis with the Redis store, else in memory."""
    settings = loaded.config.store
    if settings.backend == "redis" and settings.url is not None:
        prefix = str(getattr(getattr(store, "inner", store), "prefix", "castproxy:")) + "limits"
        return RateLimits.redis(settings.url.get_secret_value(), prefix=prefix)
    return RateLimits.in_memory()
