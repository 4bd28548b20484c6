"""What changed between two inventories (a lock, a config now, a config at a git revision), each change classed.

Pairing and the meaning of "breaking": docs/architecture.md, "Reviewed tools".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from castproxy.gitops.lockfile import Inventory, ToolRecord, WorkspaceRecord
from castproxy.gitops.schemas import Direction, compare_schemas

__all__ = ["Change", "ChangeClass", "Comparison", "compare"]

ChangeClass = Literal["breaking", "non-breaking", "unknown"]
EXIT_NO_CHANGE = 0
EXIT_CHANGES = 1
EXIT_BREAKING = 3

_SCHEMAS: tuple[tuple[str, Direction], ...] = (("inputSchema", "input"), ("outputSchema", "output"))
_ANNOTATION_WORDS: dict[tuple[str, Any], str] = {
    ("destructiveHint", True): "now marked destructive",
    ("destructiveHint", False): "no longer marked destructive",
    ("readOnlyHint", True): "now marked read-only",
    ("readOnlyHint", False): "no longer marked read-only",
}


@dataclass(frozen=True, slots=True)
class Change:
    workspace: str
    tool: str | None  # the tool's name (its new name after a rename); None for a workspace-wide change
    kind: str  # tool-added, tool-removed, tool-renamed, argument-added, type-narrowed, ... (docs/gitops.md)
    change_class: ChangeClass
    message: str  # a sentence that does not repeat the workspace or tool
    argument: str | None = None  # the argument or output field path, for schema changes
    schema: Direction | None = None
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class Comparison:
    old_label: str
    new_label: str
    changes: tuple[Change, ...]
    notes: tuple[str, ...] = ()  # facts that are not changes to the tools (a spec edit that left them alone)

    def count(self, change_class: ChangeClass) -> int:
        return sum(1 for change in self.changes if change.change_class == change_class)

    @property
    def exit_code(self) -> int:
        """0 no change, 1 changes (none known to be breaking), 3 breaking changes."""
        if any(change.change_class == "breaking" for change in self.changes):
            return EXIT_BREAKING
        return EXIT_CHANGES if self.changes else EXIT_NO_CHANGE


def compare(old: Inventory, new: Inventory, old_label: str, new_label: str) -> Comparison:
    changes: list[Change] = []
    notes: list[str] = []
    before, after = old.by_name(), new.by_name()
    for name in sorted(set(before) | set(after)):
        if name not in after:
            count = len(before[name].tools)
            changes.append(Change(name, None, "workspace-removed", "breaking",
                                  f"workspace removed, with its {count} tool{'s' if count != 1 else ''}"))
        elif name not in before:
            changes.append(Change(name, None, "workspace-added", "non-breaking", "workspace added"))
            changes += [_added(name, tool) for tool in after[name].tools]
        else:
            found = _workspace_changes(before[name], after[name])
            changes += found
            same_spec = before[name].source == after[name].source
            if same_spec and before[name].spec_digest != after[name].spec_digest and not found:
                notes.append(f"workspace {name}: the spec document changed; the tools it exposes did not")
    if any(change.change_class == "unknown" for change in changes):
        notes.append("a lock holds digests, not definitions: to see these changes argument by argument, compare "
                     "with the committed config (`castproxy diff --git REV`) or two configs (`castproxy diff OLD NEW`)")
    return Comparison(old_label, new_label, tuple(changes), tuple(notes))


def _added(workspace: str, tool: ToolRecord) -> Change:
    return Change(workspace, tool.name, "tool-added", "non-breaking", f"tool added ({tool.method} {tool.path})")


def _workspace_changes(old: WorkspaceRecord, new: WorkspaceRecord) -> list[Change]:
    name = new.name
    changes: list[Change] = []
    if old.source != new.source:
        changes.append(Change(name, None, "spec-source-changed", "non-breaking",
                              f"spec source changed from {old.source} to {new.source}", before=old.source,
                              after=new.source))
    if old.server is not None and new.server is not None and old.server != new.server:
        changes.append(Change(name, None, "upstream-changed", "breaking",
                              f"calls now go to {new.server} (was {old.server}), the spec's server URL",
                              before=old.server, after=new.server))
    pairs, removed, added = _pair(old.tools, new.tools)
    for tool in removed:
        changes.append(Change(name, tool.name, "tool-removed", "breaking", f"tool removed ({tool.method} {tool.path})"))
    for before, after in pairs:
        changes += _tool_changes(name, before, after)
    changes += [_added(name, tool) for tool in added]
    return changes


def _pair(
    old: tuple[ToolRecord, ...], new: tuple[ToolRecord, ...]
) -> tuple[list[tuple[ToolRecord, ToolRecord]], list[ToolRecord], list[ToolRecord]]:
    """(old, new) pairs of the same tool, then the removed and the added ones; each list sorted by name."""
    pairs: list[tuple[ToolRecord, ToolRecord]] = []
    old_ids = Counter(tool.identity for tool in old)
    new_ids = Counter(tool.identity for tool in new)
    new_by_id = {tool.identity: tool for tool in new if new_ids[tool.identity] == 1}
    left_old: list[ToolRecord] = []
    used: set[str] = set()
    for tool in old:
        match = new_by_id.get(tool.identity) if old_ids[tool.identity] == 1 else None
        if match is not None:
            pairs.append((tool, match))
            used.add(match.name)
        else:
            left_old.append(tool)
    left_new = {tool.name: tool for tool in new if tool.name not in used}
    removed: list[ToolRecord] = []
    for tool in left_old:
        match = left_new.pop(tool.name, None)
        if match is not None:
            pairs.append((tool, match))
        else:
            removed.append(tool)
    pairs.sort(key=lambda pair: pair[1].name)
    return pairs, sorted(removed, key=lambda t: t.name), sorted(left_new.values(), key=lambda t: t.name)


def _tool_changes(workspace: str, old: ToolRecord, new: ToolRecord) -> list[Change]:
    changes: list[Change] = []

    def add(kind: str, change_class: ChangeClass, message: str, before: Any = None, after: Any = None) -> None:
        changes.append(Change(workspace, new.name, kind, change_class, message, before=before, after=after))

    if old.name != new.name:
        add("tool-renamed", "breaking", f"renamed from {old.name} (same operation)", old.name, new.name)
    if old.operation != new.operation:
        add("tool-operation-changed", "breaking", f"now runs operation {new.operation} (was {old.operation})",
            old.operation, new.operation)
    if (old.method, old.path) != (new.method, new.path):
        add("tool-endpoint-changed", "breaking", f"now calls {new.method} {new.path} (was {old.method} {old.path})",
            f"{old.method} {old.path}", f"{new.method} {new.path}")
    if old.digest == new.digest:
        return changes
    if old.definition is None or new.definition is None:
        add("tool-changed", "unknown", "definition changed (the old one is not known here, so neither is the class)")
        return changes
    changes += definition_changes(workspace, new.name, old.definition, new.definition)
    return changes


def definition_changes(
    workspace: str, tool: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[Change]:
    """Field-by-field changes between two published definitions of one tool (the name aside)."""
    changes: list[Change] = []
    for key, kind in (("description", "description-changed"), ("title", "title-changed")):
        if old.get(key) != new.get(key):
            changes.append(Change(workspace, tool, kind, "non-breaking", f"{key} changed",
                                  before=old.get(key), after=new.get(key)))
    changes += _annotation_changes(workspace, tool, old, new)
    for schema_key, direction in _SCHEMAS:
        before, after = old.get(schema_key), new.get(schema_key)
        if before is None and after is None:
            continue
        if before is None:
            changes.append(Change(workspace, tool, "output-schema-added", "non-breaking", "now publishes an output "
                                  "schema", schema="output"))
            continue
        if after is None:
            changes.append(Change(workspace, tool, "output-schema-removed", "breaking", "no longer publishes an "
                                  "output schema", schema="output"))
            continue
        for found in compare_schemas(before, after, direction):
            changes.append(Change(workspace, tool, found.kind, "breaking" if found.breaking else "non-breaking",
                                  found.message, found.path or None, direction, found.before, found.after))
    return changes


def _annotation_changes(workspace: str, tool: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before = old.get("annotations") or {}
    after = new.get("annotations") or {}
    changes: list[Change] = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) == after.get(key) or (key == "title" and old.get("title") != new.get("title")):
            continue
        words = _ANNOTATION_WORDS.get((key, after.get(key)))
        message = words or f"annotation {key} changed from {before.get(key)!r} to {after.get(key)!r}"
        changes.append(Change(workspace, tool, "annotation-changed", "non-breaking", message,
                              before=before.get(key), after=after.get(key)))
    return changes
