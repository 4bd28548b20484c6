"""The root of castproxy's exceptions: every error castproxy raises on purpose is a `CastproxyError`.

Each package defines its own branch next to the code that raises it (`ConfigError`, `SpecError`,
`AuthError`, `StoreError`, ...); docs/architecture.md draws the whole tree. Catch the branch you mean.
"""

from __future__ import annotations

__all__ = ["CastproxyError"]


class CastproxyError(Exception):
    """Something castproxy refuses or cannot do, with a message that is safe to show (no secrets)."""
