"""How `serve` builds snapshots: at start, on every reload, and for the workspaces it retries or refreshes.

Each build gets its own `SpecFetcher` over the one on-disk spec cache (one fetch per URL per build,
conditional, the last good copy when a URL is down). A full build re-reads cast.yaml (secrets
included); a partial one rebuilds some workspaces of the config already loaded. Both run in a worker
thread (they fetch and compile).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from pathlib import Path

from castproxy.auth.bridge import AuthBridge
from castproxy.config.loader import LoadedConfig, load_config
from castproxy.openapi.spec_cache import SpecCache, SpecFetcher
from castproxy.serve.snapshot import Snapshot, build_snapshot

__all__ = ["Builds"]

log = logging.getLogger(__name__)

SPEC_CACHE_FOLDER = "spec-cache"


def spec_cache_folder(loaded: LoadedConfig) -> Path:
    """store.spec_cache, else `spec-cache` beside store.path; relative to the config's folder."""
    store = loaded.config.store
    folder = Path(store.spec_cache).expanduser() if store.spec_cache else Path(store.path).expanduser().parent / \
        SPEC_CACHE_FOLDER
    return folder if folder.is_absolute() else loaded.base_dir / folder


def _warn_fixed_settings(first: LoadedConfig, fresh: LoadedConfig) -> None:
    """Listen address, public URL, secret key and store are bound at start; say so when an edit changes them."""
    before, after = first.config, fresh.config
    changed = [
        name
        for name, old, new in (
            ("server.host", before.server.host, after.server.host),
            ("server.port", before.server.port, after.server.port),
            ("server.public_url", first.public_url, fresh.public_url),
            ("server.secret_key", before.server.secret_key, after.server.secret_key),
            ("server.previous_secret_keys", before.server.previous_secret_keys, after.server.previous_secret_keys),
            ("server.connections", before.server.connections, after.server.connections),
            ("server.metrics_token", before.server.metrics_token, after.server.metrics_token),
            ("store", before.store, after.store),
            ("server.identity", before.server.identity, after.server.identity),
            ("server.audit", before.server.audit, after.server.audit),
        )
        if old != new
    ]
    if changed:
        log.warning("these settings take effect at the next restart", extra={"fields": {"settings": changed}})


class Builds:
    def __init__(self, config_path: Path, environ: Mapping[str, str], first: LoadedConfig,
                 bridge: AuthBridge | None) -> None:
        self.config_path = config_path
        self.environ = environ
        self.first_loaded = first
        self.bridge = bridge
        self.cache = SpecCache(spec_cache_folder(first))

    def fetcher(self) -> SpecFetcher:
        return SpecFetcher(self.cache)

    def first(self) -> Snapshot:
        return build_snapshot(self.first_loaded, bridge=self.bridge, fetcher=self.fetcher())

    def full(self, previous: Snapshot) -> Snapshot:
        """Re-read cast.yaml and rebuild everything (raises ConfigError for a config invalid as a whole)."""
        fresh = load_config(self.config_path, self.environ)
        _warn_fixed_settings(self.first_loaded, fresh)
        return build_snapshot(fresh, bridge=self.bridge, previous=previous, fetcher=self.fetcher())

    def some(self, previous: Snapshot, names: Collection[str], fetcher: SpecFetcher | None = None) -> Snapshot:
        """Rebuild `names` on the config already loaded; the other workspaces are kept as they are."""
        return build_snapshot(previous.loaded, bridge=self.bridge, previous=previous,
                              fetcher=fetcher or self.fetcher(), only=names)
