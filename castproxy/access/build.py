"""The access parts of one workspace's runtime, built with its snapshot: policy, limits, named inbound keys.

`serve/snapshot.py` calls `access_parts` once per workspace and stores what it returns on the
WorkspaceRuntime; nothing here runs per request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from castproxy.access.limits import LimitPair, WorkspaceLimits
from castproxy.access.policy import Caller, tool_rate_limits, workspace_access
from castproxy.config.model import IdentitySettings, NamedApiKey, OAuth2Auth, Workspace

__all__ = ["access_parts", "hash_key", "key_text"]

if TYPE_CHECKING:
    from castproxy.catalog.select import Picked


def hash_key(key: str) -> bytes:
    """The sha256 digest kept for a configured inbound key and compared with a presented one's (serve/inbound.py)."""
    return hashlib.sha256(key.encode()).digest()


def key_text(key: SecretStr | NamedApiKey) -> str:
    """The key of an `inbound.api_keys` entry, bare or named."""
    return (key.key if isinstance(key, NamedApiKey) else key).get_secret_value()


def key_callers(workspace: Workspace) -> dict[bytes, Caller]:
    """Each named inbound key's digest -> the caller it is (its name, groups and email)."""
    keys = workspace.inbound.api_keys if workspace.inbound else []
    return {
        hash_key(key.key.get_secret_value()): Caller(
            subject=None, email=key.email.lower() if key.email else None, groups=frozenset(key.groups),
            key_name=key.name)
        for key in keys if isinstance(key, NamedApiKey)
    }


def access_parts(workspace: Workspace, picked: Sequence[Picked], identity: IdentitySettings | None) -> dict[str, Any]:
    """`access`, `limits` and `key_callers` for WorkspaceRuntime (None/empty when the workspace uses none)."""
    auth = workspace.auth
    per_user = isinstance(auth, OAuth2Auth) and auth.grant == "authorization_code"
    policy = workspace_access(workspace, picked, offered_scopes=auth.scopes if per_user else None)  # type: ignore[union-attr]
    tools = {name: pair for name, setting in tool_rate_limits(workspace, picked).items()
             if (pair := LimitPair.of(setting)) is not None}
    overall = LimitPair.of(workspace.rate_limit)
    limits = WorkspaceLimits(overall, MappingProxyType(tools)) if overall is not None or tools else None
    return {"access": policy, "limits": limits, "key_callers": MappingProxyType(key_callers(workspace))}
