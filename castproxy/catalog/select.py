"""Which operations of a compiled spec a workspace exposes: operationIds, selectors and `exclude`.

Pure: config entries in, the picked tools and positioned problems out (rules: docs/config.md, `tools`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache

from castproxy.config.model import ALL_OPERATIONS, ExcludeEntry, ToolEntry, ToolSelection, ToolSelector
from castproxy.config.source import Loc
from castproxy.openapi.model import ToolDefinition

__all__ = ["Picked", "glob_pattern", "select"]

Problem = tuple[Loc, str]
MAX_LISTED = 8


@dataclass(frozen=True, slots=True)
class Picked:
    """One exposed tool and the `tools` entries that picked it.

    A per-entry setting (today `name`/`description`; later e.g. `access`) is read from the explicit
    entry first, then from the matching selectors in config order."""

    tool: ToolDefinition  # renamed and re-described as configured
    explicit: int | None  # index of the tools entry naming this operation, if any
    selectors: tuple[int, ...] = ()  # indexes of the selector entries ("*" included) that match it


@dataclass(frozen=True)
class Selection:
    picked: tuple[Picked, ...]
    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()  # positioned, e.g. an exclude entry that excludes nothing

    @property
    def tools(self) -> tuple[ToolDefinition, ...]:
        return tuple(pick.tool for pick in self.picked)


def glob_pattern(glob: str) -> re.Pattern[str]:
    """A path glob as a regex over path templates: `*` stays in one segment, `**` spans any number (or none)."""
    return _compiled_glob(glob.rstrip("/") or "/")


@lru_cache(maxsize=256)
def _compiled_glob(glob: str) -> re.Pattern[str]:
    parts = []
    for segment in glob.split("/")[1:]:
        if segment == "**":
            parts.append("(?:/[^/]+)*")
        elif segment:
            parts.append("/" + ".*".join(re.escape(piece) for piece in segment.split("*")).replace(".*", "[^/]*"))
    return re.compile("^" + "".join(parts) + "/?$")


def matches(selector: ToolSelector, tool: ToolDefinition) -> bool:
    """True when the operation meets every criterion the selector gives."""
    if selector.method is not None and tool.operation.method != selector.method:
        return False
    if selector.tag is not None and selector.tag.casefold() not in (tag.casefold() for tag in tool.tags):
        return False
    return selector.path is None or glob_pattern(selector.path).match(tool.operation.path) is not None


def select(
    entries: Sequence[ToolEntry], exclude: Sequence[ExcludeEntry], tools: Sequence[ToolDefinition], *,
    prefix: Loc = (), spec: str = "the spec",
) -> Selection:
    """Resolve `tools` and `exclude` against the compiled operations (`spec` names the document in hints)."""
    return _Selecting(tools, prefix, spec).run(entries, exclude)


@dataclass
class _Selecting:
    tools: Sequence[ToolDefinition]
    prefix: Loc
    spec: str
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def run(self, entries: Sequence[ToolEntry], exclude: Sequence[ExcludeEntry]) -> Selection:
        by_id, duplicated = self._operation_ids()
        explicit = self._explicit(entries, by_id, duplicated)
        named_by = {at: tool for tool, (at, _) in explicit.items()}  # entry index -> tool index
        chosen: dict[int, list[int]] = {}  # tool index -> selector entries matching it, in config order
        order: list[int] = []  # tool indexes, in the order the first entry picking each came
        for index, entry in enumerate(entries):
            if isinstance(entry, ToolSelection) or (entry != ALL_OPERATIONS and isinstance(entry, str)):
                found = named_by.get(index)
                if found is not None and found not in chosen:
                    chosen[found] = []
                    order.append(found)
                continue
            selector = ToolSelector() if entry == ALL_OPERATIONS else entry
            assert isinstance(selector, ToolSelector)
            hits = [i for i, tool in enumerate(self.tools) if matches(selector, tool)]
            if not hits:
                self._matches_nothing((*self.prefix, "tools", index), selector, "tools")
            for hit in hits:
                if hit not in chosen:
                    chosen[hit] = []
                    order.append(hit)
                chosen[hit].append(index)
        excluded = self._excluded(exclude, by_id, explicit, chosen)
        picked = [
            self._pick(i, entries, explicit.get(i), tuple(chosen[i])) for i in order if i not in excluded
        ]
        if not picked and not self.errors:
            where = (*self.prefix, "exclude") if excluded else (*self.prefix, "tools")
            self.errors.append((where, "no tools left: `exclude` removes every operation that `tools` picks"
                                if excluded else "no tools: the spec has no operations"))
        self._check_names(picked, entries)
        return Selection(tuple(picked), tuple(self.errors), tuple(self.warnings))

    # -- explicit operationIds -------------------------------------------------------------------

    def _operation_ids(self) -> tuple[dict[str, int], set[str]]:
        by_id: dict[str, int] = {}
        duplicated: set[str] = set()
        for index, tool in enumerate(self.tools):
            if tool.operation_id:
                if tool.operation_id in by_id:
                    duplicated.add(tool.operation_id)
                by_id[tool.operation_id] = index
        return by_id, duplicated

    def _explicit(
        self, entries: Sequence[ToolEntry], by_id: dict[str, int], duplicated: set[str]
    ) -> dict[int, tuple[int, ToolSelection]]:
        """Tool index -> (entry index, selection) for every operation named by operationId."""
        found: dict[int, tuple[int, ToolSelection]] = {}
        for index, entry in enumerate(entries):
            if isinstance(entry, ToolSelector) or entry == ALL_OPERATIONS:
                continue
            selection = entry if isinstance(entry, ToolSelection) else ToolSelection(operation=entry)
            loc: Loc = (*self.prefix, "tools", index)
            if isinstance(entry, ToolSelection):
                loc = (*loc, "operation")
            tool = by_id.get(selection.operation)
            if tool is None:
                self.errors.append((loc, self._unknown(selection.operation, by_id)))
            elif selection.operation in duplicated:
                self.errors.append((loc, f"operationId {selection.operation!r} is used by more than one operation "
                                         "in the spec; fix the spec so each operationId is unique"))
            elif tool in found:
                self.errors.append((loc, f"operation {selection.operation!r} is already listed at "
                                         f"tools[{found[tool][0]}]"))
            else:
                found[tool] = (index, selection)
        return found

    def _pick(
        self, tool_index: int, entries: Sequence[ToolEntry], explicit: tuple[int, ToolSelection] | None,
        selectors: tuple[int, ...],
    ) -> Picked:
        tool = self.tools[tool_index]
        if explicit is None:
            return Picked(tool, None, selectors)
        index, selection = explicit
        if selection.name or selection.description:
            tool = replace(
                tool, name=selection.name or tool.name, description=selection.description or tool.description
            )
        return Picked(tool, index, selectors)

    def _check_names(self, picked: list[Picked], entries: Sequence[ToolEntry]) -> None:
        """Renames must keep names unique (generated names already are)."""
        owners: dict[str, Picked] = {}
        renamed = [pick for pick in picked if pick.explicit is not None and _renames(entries[pick.explicit])]
        for pick in [p for p in picked if p not in renamed] + sorted(renamed, key=lambda p: p.explicit or 0):
            first = owners.get(pick.tool.name)
            if first is None:
                owners[pick.tool.name] = pick
                continue
            assert pick.explicit is not None
            if first.explicit is not None:
                by = f"tools[{first.explicit}]"
            else:
                by = f"operation {_label(first.tool)} (picked by tools[{first.selectors[0]}])"
            self.errors.append(((*self.prefix, "tools", pick.explicit, "name"),
                                f"tool name {pick.tool.name!r} is already used by {by}; give one of them another name"))
        picked[:] = [pick for pick in picked if owners.get(pick.tool.name) is pick]

    # -- exclude ----------------------------------------------------------------------------------

    def _excluded(
        self, exclude: Sequence[ExcludeEntry], by_id: dict[str, int],
        explicit: dict[int, tuple[int, ToolSelection]], chosen: dict[int, list[int]],
    ) -> set[int]:
        """Tool indexes to leave out; warns about entries that leave nothing out."""
        removed: set[int] = set()
        for index, entry in enumerate(exclude):
            loc: Loc = (*self.prefix, "exclude", index)
            if isinstance(entry, str):
                tool = by_id.get(entry)
                if tool is None:
                    self.warnings.append((loc, self._unknown(entry, by_id) + "; this entry excludes nothing"))
                elif tool in explicit:
                    self.errors.append((loc, f"operation {entry!r} is listed at tools[{explicit[tool][0]}] and "
                                             "excluded here; remove one of the two"))
                elif tool not in chosen:
                    self.warnings.append((loc, f"operation {entry!r} is not picked by any entry of `tools`; "
                                               "this entry excludes nothing"))
                else:
                    removed.add(tool)
                continue
            hits = [i for i, tool in enumerate(self.tools) if matches(entry, tool)]
            if not hits:
                self._matches_nothing(loc, entry, "exclude")
                continue
            effective = [i for i in hits if i in chosen and i not in explicit]
            if effective:
                removed.update(effective)
            elif any(i in explicit for i in hits):
                self.warnings.append((loc, "this selector matches only operations listed by operationId in "
                                           "`tools`, which `exclude` never removes; it excludes nothing"))
            else:
                self.warnings.append((loc, f"none of the {len(hits)} operation{'s' if len(hits) != 1 else ''} "
                                           "this selector matches is picked by `tools`; it excludes nothing"))
        return removed

    # -- messages -----------------------------------------------------------------------------------

    def _matches_nothing(self, loc: Loc, selector: ToolSelector, where: str) -> None:
        """An error for a `tools` selector (a warning for an `exclude` one), at the criterion to blame."""
        problems = self.errors if where == "tools" else self.warnings
        tail = "" if where == "tools" else "; this entry excludes nothing"
        if not self.tools:
            problems.append((loc, "the spec has no operations" + tail))
            return
        if selector.tag is not None:
            tags = sorted({tag for tool in self.tools for tag in tool.tags}, key=str.casefold)
            if selector.tag.casefold() not in {tag.casefold() for tag in tags}:
                problems.append(((*loc, "tag"), _unknown_tag(selector.tag, tags) + tail))
                return
        if selector.path is not None:
            pattern = glob_pattern(selector.path)
            if not any(pattern.match(tool.operation.path) for tool in self.tools):
                problems.append(((*loc, "path"), _unknown_path(selector.path, self.tools) + tail))
                return
        criteria = [f"{name} {value!r}" for name, value in
                    (("tag", selector.tag), ("path", selector.path), ("method", selector.method)) if value]
        message = ("no operation in the spec has method " + str(selector.method) if len(criteria) == 1
                   else "no operation in the spec matches all of " + _joined(criteria))
        problems.append((loc, message + tail))

    def _unknown(self, operation_id: str, by_id: dict[str, int]) -> str:
        message = f"operationId {operation_id!r} is not in the spec"
        close = _closest(operation_id, list(by_id))
        if close:
            return f"{message}; did you mean {_joined([repr(c) for c in close], 'or')}?"
        if not by_id:
            return message + " (the spec has no operationIds)"
        return message + f" (run 'castproxy tools --spec {self.spec}' to list its {len(by_id)} operations)"


def _renames(entry: ToolEntry) -> bool:
    return isinstance(entry, ToolSelection) and entry.name is not None


def _label(tool: ToolDefinition) -> str:
    return repr(tool.operation_id) if tool.operation_id else f"{tool.operation.method} {tool.operation.path}"


def _joined(items: list[str], word: str = "and") -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {word} " + items[-1]


def _unknown_tag(tag: str, tags: list[str]) -> str:
    if not tags:
        return f"tag {tag!r} matches nothing: the spec's operations have no tags"
    close = _closest(tag, tags)
    if close:
        return f"tag {tag!r} is not in the spec; did you mean {_joined([repr(c) for c in close], 'or')}?"
    shown = ", ".join(tags[:MAX_LISTED]) + (", ..." if len(tags) > MAX_LISTED else "")
    return f"tag {tag!r} is not in the spec (its tags: {shown})"


def _unknown_path(glob: str, tools: Sequence[ToolDefinition]) -> str:
    firsts = sorted({"/" + tool.operation.path.strip("/").split("/")[0] for tool in tools})
    shown = ", ".join(firsts[:MAX_LISTED]) + (", ..." if len(firsts) > MAX_LISTED else "")
    return f"path glob {glob!r} matches no path in the spec (its paths start with {shown}; `*` is one segment, " \
           "`**` any number)"


def _closest(word: str, known: list[str]) -> list[str]:
    """The best match (ignoring case), and any about as good; none under a similarity of 0.6."""
    matcher = difflib.SequenceMatcher(b=word.lower())
    scored: list[tuple[float, str]] = []
    for candidate in known:
        matcher.set_seq1(candidate.lower())
        if matcher.real_quick_ratio() >= 0.6 and matcher.quick_ratio() >= 0.6:
            scored.append((matcher.ratio(), candidate))
    scored = sorted((item for item in scored if item[0] >= 0.6), key=lambda item: (-item[0], item[1]))
    if not scored:
        return []
    best = scored[0][0]
    return [candidate for ratio, candidate in scored[:3] if ratio >= best - 0.05]
