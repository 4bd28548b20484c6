"""A clock tests move by hand: handed to the test server and castproxy, so token expiry needs no sleep."""

from __future__ import annotations

import threading
import time


class FakeClock:
    """Epoch seconds that start at the real time and only change when `advance` is called (thread-safe)."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds
