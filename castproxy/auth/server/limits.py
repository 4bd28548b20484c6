"""How fast one caller may make castproxy do work it keeps or sends out: a token bucket per key.

Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DOCUMENT_FETCHES", "REGISTRATIONS", "RateLimit", "RateLimiter", "SignInBudget", "caller_key", "retry_after"]

MAX_KEYS = 10_000


@dataclass(frozen=True)
class RateLimit:
    """`per_minute` requests on average, with up to `burst` at once after a quiet spell."""

    per_minute: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_minute <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs per_minute > 0 and burst >= 1")


REGISTRATIONS = RateLimit(per_minute=20, burst=10)  # per caller address
SIGN_INS = RateLimit(per_minute=30, burst=20)  # sign-ins started at /authorize, per caller address
MAX_LIVE_SIGN_INS = 2000  # sign-ins pending at once in this process, all callers together
SIGN_IN_LIFETIME = 900.0  # how long a started sign-in keeps records in the store (the longest of its TTLs)
DOCUMENT_FETCHES = RateLimit(per_minute=30, burst=10)  # per caller address and client_id URL host


class RateLimiter:
    """One token bucket per key; `clock` (monotonic seconds) is replaceable for tests."""

    def __init__(
        self, limit: RateLimit, *, max_keys: int = MAX_KEYS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.limit = limit
        self.max_keys = max_keys
        self._clock = clock
        self._per_second = limit.per_minute / 60.0
        # key -> [tokens, time of last update], least recently seen first
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def take(self, key: str) -> float:
        """Spend one token for `key`: 0.0 when allowed, else the seconds until one will be there."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.popitem(last=False)
            bucket = self._buckets[key] = [float(self.limit.burst), now]
        else:
            self._buckets.move_to_end(key)
            bucket[0] = min(float(self.limit.burst), bucket[0] + max(0.0, now - bucket[1]) * self._per_second)
            bucket[1] = now
        if bucket[0] >= 1.0 - 1e-9:  # a caller that waited exactly Retry-After is let in despite float rounding
            bucket[0] = max(0.0, bucket[0] - 1.0)
            return 0.0
        return (1.0 - bucket[0]) / self._per_second


def retry_after(wait: float) -> str:
    """The Retry-After value (whole seconds, never 0) for a wait `take` returned."""
    return str(max(1, math.ceil(wait)))


def caller_key(host: str | None) -> str:
    """The key a caller address is counted under: the address itself, or its /64 for IPv6.

    One IPv6 subscriber is usually given a whole /64, so counting single addresses would hand a
    caller 2**64 fresh buckets.
    """
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host  # not an IP (a test client, a unix socket): count it as it is
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # a dual-stack socket's view of an IPv4 caller
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class SignInBudget:
    """How many sign-ins /authorize may start: per caller address (a token bucket) and in total (at most
    `max_live` whose records may still be in the store, counted by this process)."""

    def __init__(
        self,
        *,
        per_caller: RateLimit = SIGN_INS,
        max_live: int = MAX_LIVE_SIGN_INS,
        lifetime: float = SIGN_IN_LIFETIME,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.callers = RateLimiter(per_caller, clock=clock)
        self.max_live = max_live
        self.lifetime = lifetime
        self._clock = clock
        self._live: deque[float] = deque()  # when each started sign-in's records expire, oldest first

    def admit(self, caller: str) -> tuple[int, str, str] | None:
        """None when `caller` may start one more sign-in (counted); else (status, Retry-After, message)."""
        wait = self.callers.take(caller)
        if wait:
            seconds = retry_after(wait)
            return 429, seconds, f"Too many sign-ins started from this address; retry in {seconds} s."
        now = self._clock()
        while self._live and self._live[0] <= now:
            self._live.popleft()
        if len(self._live) >= self.max_live:
            seconds = retry_after(self._live[0] - now)
            return 503, seconds, f"Too many sign-ins are in progress on this proxy; retry in {seconds} s."
        self._live.append(now + self.lifetime)
        return None
