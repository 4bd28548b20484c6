"""The serving state: the current snapshot, and what the last reload did (for /readyz and the logs).

Swapping is one attribute assignment on the event loop; readers take `state.snapshot` once per
request and keep that object, so no lock is needed and nothing is ever half-applied.
"""

from __future__ import annotations

import time
from typing import Any

from castproxy.serve.snapshot import Snapshot


class ServeState:
    def __init__(self, snapshot: Snapshot, *, store: Any = None, bridge: Any = None) -> None:
        self.store = store
        self.bridge = bridge
        self.snapshot = snapshot
        self.last_good_at = snapshot.loaded_at
        self.last_error: tuple[str, ...] = ()
        self.last_error_at: float | None = None
        if bridge is not None:
            bridge.update(snapshot.oauth_workspaces(), snapshot.login_workspaces(), snapshot.oauth_base_urls())

    def install(self, snapshot: Snapshot) -> None:
        if self.bridge is not None:  # the bridge first, so the new workspaces can sign in as soon as they serve
            self.bridge.update(snapshot.oauth_workspaces(), snapshot.login_workspaces(), snapshot.oauth_base_urls())
        self.snapshot = snapshot
        self.last_good_at = snapshot.loaded_at
        self.last_error = ()
        self.last_error_at = None

    def reject(self, problems: list[str]) -> None:
        self.last_error = tuple(problems)
        self.last_error_at = time.time()
