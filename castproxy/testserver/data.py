"""The test server's in-memory data: a few seeded items and users, and the operations the REST API needs.

Each app instance owns one `DataStore`, so parallel tests never see each other's writes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["DataStore"]

SEED_USERS: tuple[dict[str, Any], ...] = (
    {"id": 1, "name": "Alice Martin", "email": "alice@example.com", "role": "admin"},
    {"id": 2, "name": "Bob Chen", "email": "bob@example.com", "role": "member"},
    {"id": 3, "name": "Carol Diaz", "email": "carol@example.com", "role": "member"},
)

SEED_ITEMS: tuple[dict[str, Any], ...] = (
    {"name": "Widget", "description": "A small widget", "price": 9.99, "tags": ["tools", "small"], "owner_id": 1},
    {"name": "Gadget", "description": "A useful gadget", "price": 24.5, "tags": ["tools"], "owner_id": 2},
    {"name": "Gizmo", "description": "A shiny gizmo", "price": 99.0, "tags": ["premium"], "owner_id": 1},
)


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class DataStore:
    """Items and users kept in dicts; a lock because uvicorn may run sync code in threads."""

    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    _next_item_id: int = 1
    _idempotency: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def seeded(cls) -> DataStore:
        store = cls()
        for user in SEED_USERS:
            store.users[user["id"]] = dict(user)
        for item in SEED_ITEMS:
            store.create_item(dict(item))
        return store

    def create_item(self, fields: dict[str, Any], idempotency_key: str | None = None) -> tuple[dict[str, Any], bool]:
        """Returns (item, created); a repeated Idempotency-Key returns the first item again."""
        with self._lock:
            if idempotency_key and idempotency_key in self._idempotency:
                existing = self.items.get(self._idempotency[idempotency_key])
                if existing is not None:
                    return existing, False
            item_id = self._next_item_id
            self._next_item_id += 1
            item = {
                "id": item_id,
                "name": fields["name"],
                "description": fields.get("description", ""),
                "price": fields.get("price", 0),
                "tags": list(fields.get("tags", [])),
                "owner_id": fields.get("owner_id", 1),
                "created_at": _now(),
            }
            self.items[item_id] = item
            if idempotency_key:
                self._idempotency[idempotency_key] = item_id
            return item, True

    def update_item(self, item_id: int, fields: dict[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            item = self.items.get(item_id)
            if item is not None:
                item.update(fields)
            return item

    def delete_item(self, item_id: int) -> bool:
        with self._lock:
            return self.items.pop(item_id, None) is not None
