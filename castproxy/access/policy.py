"""Callers and the rules about them: who may connect to a workspace and call each tool, with which scopes.

Everything here is pure and built once per config snapshot. Per request it reads only the `Caller`
(made from castproxy's token or a named inbound key), never the store. Tools a caller may not call are
hidden from their tools/list: the listing for each distinct set of hidden tools is built once and kept.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from castproxy.config.model import AccessRule, RateLimit, ToolSelection, ToolSelector, Workspace

__all__ = ["NOBODY", "Caller", "Rule", "WorkspaceAccess", "tool_rate_limits", "workspace_access"]

if TYPE_CHECKING:
    from castproxy.catalog.select import Picked

ANONYMOUS = "anonymous"
_MAX_VIEWS = 256  # distinct hidden-tool sets whose listings are kept (one per policy group in practice)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who makes a request: a person signed in at the company provider, a named inbound key, or an OAuth client."""

    subject: str | None = None  # the identity provider's `sub`
    email: str | None = None  # lower case; only a verified address
    groups: frozenset[str] = frozenset()
    client_id: str | None = None  # the MCP client behind castproxy's token
    address: str | None = None  # the caller's address (per /64 for IPv6), for callers with no other identity
    key_name: str | None = None  # a named inbound key
    scopes: frozenset[str] | None = None  # castproxy token's scopes (None: not an OAuth caller)

    @property
    def limit_key(self) -> str:
        """What per-caller limits count: the person, else the key, else the client."""
        if self.subject:
            return f"sub:{self.subject}"
        if self.key_name:
            return f"key:{self.key_name}"
        if self.client_id:
            return f"client:{self.client_id}"
        return f"ip:{self.address}" if self.address else ANONYMOUS

    @property
    def label(self) -> str:
        """How logs name the caller (the email when known; never a token or key)."""
        return self.email or (f"key {self.key_name}" if self.key_name else self.subject or self.client_id or ANONYMOUS)


NOBODY = Caller()


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled `access` entry: the caller matches when any of its emails, domains, groups or subjects does."""

    emails: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    subjects: frozenset[str] = frozenset()

    @classmethod
    def of(cls, rule: AccessRule) -> Rule:
        return cls(frozenset(rule.emails), frozenset(rule.domains), frozenset(rule.groups), frozenset(rule.subjects))

    def allows(self, caller: Caller) -> bool:
        if caller.subject is not None and caller.subject in self.subjects:
            return True
        email = caller.email
        if email is not None and (email in self.emails or email.rpartition("@")[2] in self.domains):
            return True
        return not self.groups.isdisjoint(caller.groups)


@dataclass(frozen=True, slots=True)
class ScopeNeed:
    """An operation's OAuth scopes: any one alternative (all of its scopes) is enough."""

    alternatives: tuple[frozenset[str], ...]

    def met_by(self, scopes: frozenset[str]) -> bool:
        return any(alternative <= scopes for alternative in self.alternatives)

    def challenge(self, scopes: frozenset[str]) -> tuple[str, ...]:
        """What to ask for: the scopes held plus the first alternative's (MCP clients add them to what they hold)."""
        return tuple(sorted(scopes | self.alternatives[0]))


def scope_need(security: Sequence[Sequence[str]], offered: Iterable[str]) -> ScopeNeed | None:
    """The need castproxy enforces for an operation: only scopes the workspace offers count (others can never be
    granted through castproxy, so the upstream decides); an alternative without such scopes means no need."""
    offered_set = frozenset(offered)
    alternatives = []
    for alternative in security:
        needed = frozenset(scope for scope in alternative if scope in offered_set)
        if not needed:
            return None
        alternatives.append(needed)
    return ScopeNeed(tuple(alternatives)) if alternatives else None


@dataclass(eq=False)
class WorkspaceAccess:
    """One workspace's policy: who may connect, who may call which tool, which tools need which scopes."""

    connect: Rule | None = None
    tools: Mapping[str, Rule] = field(default_factory=dict)  # only the tools with a rule of their own
    scopes: Mapping[str, ScopeNeed] = field(default_factory=dict)  # only the tools with a need castproxy checks
    _views: dict[frozenset[str], Mapping[str, Any]] = field(default_factory=dict, repr=False)
    _lacking: dict[frozenset[str], frozenset[str]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def may_connect(self, caller: Caller) -> bool:
        return self.connect is None or self.connect.allows(caller)

    def refusal(self, caller: Caller, tool: str) -> str | None:
        """Why `caller` may not call `tool` (a sentence for the tool result), or None."""
        rule = self.tools.get(tool)
        if rule is not None and not rule.allows(caller):
            return (f"Tool '{tool}' is not available to {caller.label}: the workspace's access policy limits it to "
                    "other people or groups. Ask whoever runs castproxy for access.")
        need = self.missing_scopes(caller, tool)
        if need is not None:
            wanted = " or ".join(" ".join(sorted(alternative)) for alternative in need.alternatives)
            return f"Tool '{tool}' needs the scope {wanted}, which this sign-in was not granted; sign in again with it."
        return None

    def missing_scopes(self, caller: Caller, tool: str) -> ScopeNeed | None:
        """The tool's scope need when the caller's castproxy token does not meet it (callers without one: None)."""
        need = self.scopes.get(tool)
        if need is None or caller.scopes is None or need.met_by(caller.scopes):
            return None
        return need

    def hidden(self, caller: Caller) -> frozenset[str]:
        """The tools this caller may not call (computed from the few restricted tools only)."""
        if not self.tools and not self.scopes:
            return frozenset()
        hidden = frozenset(name for name, rule in self.tools.items() if not rule.allows(caller))
        return hidden | self.lacking_scopes(caller.scopes)

    def lacking_scopes(self, scopes: frozenset[str] | None) -> frozenset[str]:
        """The tools whose scopes a token with `scopes` does not meet (kept per distinct scope set)."""
        if scopes is None or not self.scopes:
            return frozenset()
        found = self._lacking.get(scopes)
        if found is None:
            found = frozenset(name for name, need in self.scopes.items() if not need.met_by(scopes))
            with self._lock:
                if len(self._lacking) >= _MAX_VIEWS:
                    self._lacking.clear()
                self._lacking[scopes] = found
        return found

    def listing_for(self, caller: Caller, listing: Mapping[str, Any]) -> Mapping[str, Any]:
        """The tools/list answer without the caller's hidden tools: one shared object per hidden set, so the
        fast path encodes each once."""
        hidden = self.hidden(caller)
        if not hidden:
            return listing
        view = self._views.get(hidden)
        if view is None:
            tools = [tool for tool in listing.get("tools", []) if tool.get("name") not in hidden]
            view = MappingProxyType({**listing, "tools": tools})
            with self._lock:
                if len(self._views) >= _MAX_VIEWS:
                    self._views.clear()
                view = self._views.setdefault(hidden, view)
        return view


def entry_setting(workspace: Workspace, pick: Picked, name: str) -> Any:
    """A per-entry setting (`access`, `rate_limit`) of a picked tool: its own entry's, else the first matching
    selector's that sets it (config order), else None."""
    order = ((pick.explicit,) if pick.explicit is not None else ()) + pick.selectors
    for index in order:
        entry = workspace.tools[index]
        if isinstance(entry, ToolSelection | ToolSelector):
            value = getattr(entry, name)
            if value is not None:
                return value
    return None


def workspace_access(
    workspace: Workspace, picked: Sequence[Picked], *, offered_scopes: Sequence[str] | None
) -> WorkspaceAccess | None:
    """The workspace's policy, or None when it has none (then the hot path checks nothing). `offered_scopes`:
    the oauth2 authorization_code workspace's scopes, whose operation scopes castproxy enforces."""
    tools: dict[str, Rule] = {}
    needs: dict[str, ScopeNeed] = {}
    for pick in picked:
        rule = entry_setting(workspace, pick, "access")
        if rule is not None:
            tools[pick.tool.name] = Rule.of(rule)
        if offered_scopes:
            need = scope_need(pick.tool.security_scopes, offered_scopes)
            if need is not None:
                needs[pick.tool.name] = need
    connect = Rule.of(workspace.access) if workspace.access is not None else None
    if connect is None and not tools and not needs:
        return None
    return WorkspaceAccess(connect=connect, tools=MappingProxyType(tools), scopes=MappingProxyType(needs))


def tool_rate_limits(workspace: Workspace, picked: Sequence[Picked]) -> dict[str, RateLimit]:
    """Each tool's own `rate_limit` (from its entry or a selector)."""
    found = {pick.tool.name: entry_setting(workspace, pick, "rate_limit") for pick in picked}
    return {name: value for name, value in found.items() if value is not None}
