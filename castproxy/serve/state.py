"""The serving state: the current snapshot, and what the last reload did (for /readyz and the logs).

Swapping is one attribute assignment on the event loop; readers take `state.snapshot` once per
request and keep that object, so no lock is needed and nothing is ever half-applied.
"""

from __future__ import annotations

import time

from castproxy.auth.bridge import AuthBridge
from castproxy.serve.snapshot import Snapshot
from castproxy.store.base import Store

__all__ = ["ServeState"]


class ServeState:
    def __init__(self, snapshot: Snapshot, *, store: Store | None = None,
                 bridge: AuthBridge | None = None) -> None:
        self.store = store
        self.bridge = bridge
        self.snapshot = snapshot
        self.last_good_at = snapshot.loaded_at
        self.last_error: tuple[str, ...] = ()
        self.last_error_at: float | None = None
        if bridge is not None:
            _update_bridge(bridge, snapshot)

    def install(self, snapshot: Snapshot, *, partial: bool = False) -> None:
        """`partial`: some workspaces were rebuilt on the config already loaded (a retry or a spec
        refresh), so when the config was loaded, and a rejected reload since, stay as they are."""
        if self.bridge is not None:  # the bridge first, so the new workspaces can sign in as soon as they serve
            _update_bridge(self.bridge, snapshot)
        self.snapshot = snapshot
        if partial:
            return
        self.last_good_at = snapshot.loaded_at
        self.last_error = ()
        self.last_error_at = None

    def reject(self, problems: list[str]) -> None:
        self.last_error = tuple(problems)
        self.last_error_at = time.time()


def _update_bridge(bridge: AuthBridge, snapshot: Snapshot) -> None:
    bridge.update(snapshot.oauth_workspaces(), snapshot.login_workspaces(), snapshot.oauth_base_urls(),
                  sign_in_only=snapshot.identity_workspaces(), access=snapshot.connect_rules())
