"""Persistent state behind one interface: SQLite (embedded) and Redis (replicas), encryption at rest."""

from __future__ import annotations

from pathlib import Path

from castproxy.config.model import StoreSettings
from castproxy.store.base import LockTimeout, Store, StoreError

__all__ = ["LockTimeout", "Store", "StoreError", "open_store"]


def open_store(settings: StoreSettings, base_dir: Path) -> Store:
    """The configured backend; a relative SQLite path resolves against the config file's folder."""
    if settings.backend == "redis":
        from castproxy.store.redis import RedisStore

        if settings.url is None:
            raise StoreError("store.backend is redis but store.url is not set")
        return RedisStore(settings.url.get_secret_value())
    from castproxy.store.sqlite import SQLiteStore

    path = Path(settings.path).expanduser()
    return SQLiteStore(path if path.is_absolute() else Path(base_dir) / path)
