"""Two JSON Schemas of one tool (its input, or its output) compared keyword by keyword, each difference classed
as narrower, wider or words (docs/architecture.md, "Reviewed tools").
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

__all__ = ["Direction", "SchemaChange", "compare_schemas"]

Direction = Literal["input", "output"]
Effect = Literal["narrower", "wider", "both", "words"]

MAX_DEPTH = 48
MAX_REF_HOPS = 32
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", "minContains")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", "maxContains")
_EXACT = ("pattern", "format", "multipleOf", "contentEncoding", "contentMediaType")
_WORDS = ("description", "title")
# Compared elsewhere, or carrying no meaning for callers.
_HANDLED = frozenset({
    "type", "enum", "const", "properties", "required", "additionalProperties", "items", "anyOf", "oneOf", "allOf",
    "$ref", "$defs", "definitions", "$schema", "$id", "$comment", "examples", "example", "default", "deprecated",
    "readOnly", "writeOnly", "uniqueItems", *_LOWER_BOUNDS, *_UPPER_BOUNDS, *_EXACT, *_WORDS,
})


@dataclass(frozen=True, slots=True)
class SchemaChange:
    path: str  # "limit", "body.address.city", "tags[]"; "" is the schema as a whole
    kind: str  # argument-added, type-narrowed, enum-removed, description-changed, ... (see docs/gitops.md)
    breaking: bool
    message: str  # a sentence without the tool's name
    before: Any = None
    after: Any = None


def compare_schemas(old: Any, new: Any, direction: Direction) -> list[SchemaChange]:
    """The differences between two versions of one tool's input (or output) schema."""
    walk = _SchemaComparison(old if isinstance(old, dict) else {}, new if isinstance(new, dict) else {}, direction)
    walk.compare("", old, new, 0)
    return walk.changes


def json_type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _shown(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _types_text(types: frozenset[str] | None) -> str:
    return "any type" if types is None else " or ".join(sorted(types))


def _within(inner: frozenset[str], outer: frozenset[str]) -> bool:
    """Every value of the types `inner` is also of one of the types `outer` (an integer is a number)."""
    return all(kind in outer or (kind == "integer" and "number" in outer) for kind in inner)


def _pointer(root: Mapping[str, Any], ref: str) -> Any:
    """The node a local ref points at in `root`, or None (not local, or nothing there)."""
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for raw in ref[2:].split("/"):
        token = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


@dataclass
class _SchemaComparison:
    """One comparison of an old and a new schema: the changes found so far and the `$ref` pairs being walked."""

    old_root: Mapping[str, Any]
    new_root: Mapping[str, Any]
    direction: Direction
    changes: list[SchemaChange] = field(default_factory=list)
    open_refs: set[tuple[str, str]] = field(default_factory=set)  # ref pairs being compared (cycles)

    # --- reporting ------------------------------------------------------------------------------

    def _breaks(self, effect: Effect) -> bool:
        if effect == "both":
            return True
        if effect == "narrower":
            return self.direction == "input"
        if effect == "wider":
            return self.direction == "output"
        return False

    def _what(self, path: str) -> str:
        if not path:
            return "the input" if self.direction == "input" else "the output"
        return f"argument `{path}`" if self.direction == "input" else f"output field `{path}`"

    def _add(self, path: str, kind: str, effect: Effect, message: str, before: Any = None, after: Any = None) -> None:
        self.changes.append(SchemaChange(path, kind, self._breaks(effect), message, before, after))

    def _member_kind(self, change: str) -> str:
        return f"argument-{change}" if self.direction == "input" else f"output-field-{change}"

    # --- resolving ------------------------------------------------------------------------------

    def _resolve(self, node: Any, root: Mapping[str, Any]) -> tuple[Any, str]:
        """`node` with its local refs followed (keywords beside a `$ref` layered on top), and the last
        ref followed ("" when none): the walk compares each pair of refs once, so recursion ends."""
        last = ""
        for _ in range(MAX_REF_HOPS):
            if node is True:
                return {}, last
            if node is False:
                return {"not": {}}, last
            if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
                return node, last
            target = _pointer(root, node["$ref"])
            if not isinstance(target, dict | bool):
                return node, last  # a ref we cannot follow: compared as it is written
            last = node["$ref"]
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            if target is True or target is False:
                target = {} if target is True else {"not": {}}
            node = {**target, **siblings} if siblings else target
        return node, last

    # --- the walk -------------------------------------------------------------------------------

    def compare(self, path: str, old_node: Any, new_node: Any, depth: int) -> None:
        old, old_ref = self._resolve(old_node, self.old_root)
        new, new_ref = self._resolve(new_node, self.new_root)
        pair = (old_ref, new_ref)
        if (old_ref or new_ref) and pair in self.open_refs:
            return  # a recursive schema: this pair is being compared further up
        if not isinstance(old, dict) or not isinstance(new, dict) or depth > MAX_DEPTH:
            if _key(old) != _key(new):
                self._add(path, "schema-changed", "both", f"the schema of {self._what(path)} changed", old, new)
            return
        if _key(old) == _key(new):
            return
        if old_ref or new_ref:
            self.open_refs.add(pair)
        self._words(path, old, new)
        self._types(path, old, new)
        self._enum(path, old, new)
        self._bounds(path, old, new)
        self._notes(path, old, new)
        self._properties(path, old, new, depth)
        self._items(path, old, new, depth)
        self._options(path, old, new, depth)
        self._other(path, old, new)
        self.open_refs.discard(pair)

    def _words(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        for keyword in _WORDS:
            before, after = old.get(keyword), new.get(keyword)
            if before != after:
                what = self._what(path)
                self._add(path, f"{keyword}-changed", "words", f"{keyword} of {what} changed", before, after)

    def _types(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        both_options = _options(old) is not None and _options(new) is not None
        before = self._type_set(old, self.old_root, derive=not both_options)
        after = self._type_set(new, self.new_root, derive=not both_options)
        if before == after or (before is not None and after is not None and _within(before, after)
                                and _within(after, before)):
            return
        effect: Effect
        if after is not None and (before is None or _within(after, before)):
            kind, effect = "type-narrowed", "narrower"
        elif before is not None and (after is None or _within(before, after)):
            kind, effect = "type-widened", "wider"
        else:
            kind, effect = "type-changed", "both"
        verb = kind.removeprefix("type-")
        self._add(path, kind, effect, f"type of {self._what(path)} {verb} from {_types_text(before)} to "
                  f"{_types_text(after)}", sorted(before) if before else None, sorted(after) if after else None)

    def _type_set(self, schema: dict[str, Any], root: Mapping[str, Any], *, derive: bool) -> frozenset[str] | None:
        """The JSON types `schema` admits (None: any); `derive` also reads them off anyOf/oneOf options."""
        kind = schema.get("type")
        if isinstance(kind, str):
            return frozenset({kind})
        if isinstance(kind, list) and kind:
            return frozenset(str(item) for item in kind)
        values = _values(schema)
        if values:
            return frozenset(json_type_of(value) for value in values)
        options = _options(schema)
        if not (derive and options):
            return None
        union: set[str] = set()
        for member in options:
            resolved = self._resolve(member, root)[0]
            types = self._type_set(resolved, root, derive=True) if isinstance(resolved, dict) else None
            if types is None:
                return None
            union |= types
        return frozenset(union)

    def _enum(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        before, after = _values(old), _values(new)
        if before is None and after is None:
            return
        what = self._what(path)
        if before is None:
            self._add(path, "enum-restricted", "narrower",
                      f"{what} is now limited to {_list(after or [])}", None, after)
            return
        if after is None:
            self._add(path, "enum-lifted", "wider", f"{what} is no longer limited to a fixed set of values",
                      before, None)
            return
        after_keys = {_key(value) for value in after}
        before_keys = {_key(value) for value in before}
        removed = [value for value in before if _key(value) not in after_keys]
        added = [value for value in after if _key(value) not in before_keys]
        if removed:
            self._add(path, "enum-values-removed", "narrower",
                      f"{what} no longer accepts {_list(removed)}" if self.direction == "input"
                      else f"{what} no longer returns {_list(removed)}", removed, None)
        if added:
            self._add(path, "enum-values-added", "wider",
                      f"{what} now accepts {_list(added)}" if self.direction == "input"
                      else f"{what} may now return {_list(added)}", None, added)

    def _bounds(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        what = self._what(path)
        for keyword in (*_LOWER_BOUNDS, *_UPPER_BOUNDS):
            before, after = _number(old.get(keyword)), _number(new.get(keyword))
            if before == after:
                continue
            lower = keyword in _LOWER_BOUNDS
            if before is None:
                effect: Effect = "narrower"
            elif after is None:
                effect = "wider"
            else:
                effect = "narrower" if (after > before) == lower else "wider"
            self._constraint(path, keyword, effect, what, old.get(keyword), new.get(keyword))
        for keyword in _EXACT:
            before, after = old.get(keyword), new.get(keyword)
            if before == after:
                continue
            effect = "narrower" if before is None else "wider" if after is None else "both"
            self._constraint(path, keyword, effect, what, before, after)
        if bool(old.get("uniqueItems")) != bool(new.get("uniqueItems")):
            effect = "narrower" if new.get("uniqueItems") else "wider"
            self._constraint(path, "uniqueItems", effect, what, old.get("uniqueItems"), new.get("uniqueItems"))

    def _constraint(self, path: str, keyword: str, effect: Effect, what: str, before: Any, after: Any) -> None:
        kind = {"narrower": "constraint-narrowed", "wider": "constraint-widened"}.get(effect, "constraint-changed")
        if before is None:
            text = f"{what} gained {keyword} {_shown(after)}"
        elif after is None:
            text = f"{what} lost {keyword} {_shown(before)}"
        else:
            text = f"{keyword} of {what} changed from {_shown(before)} to {_shown(after)}"
        self._add(path, kind, effect, text, before, after)

    def _notes(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        what = self._what(path)
        if _key(old.get("default")) != _key(new.get("default")):
            self._add(path, "default-changed", "words", f"default of {what} changed from "
                      f"{_shown(old.get('default'))} to {_shown(new.get('default'))}", old.get("default"),
                      new.get("default"))
        if bool(old.get("deprecated")) != bool(new.get("deprecated")):
            text = f"{what} is now deprecated" if new.get("deprecated") else f"{what} is no longer deprecated"
            self._add(path, "deprecated-changed", "words", text, old.get("deprecated"), new.get("deprecated"))

    def _properties(self, path: str, old: dict[str, Any], new: dict[str, Any], depth: int) -> None:
        before: dict[str, Any] = old["properties"] if isinstance(old.get("properties"), dict) else {}
        after: dict[str, Any] = new["properties"] if isinstance(new.get("properties"), dict) else {}
        old_required = {name for name in old.get("required", ()) if isinstance(name, str)}
        new_required = {name for name in new.get("required", ()) if isinstance(name, str)}
        names = [*before, *(name for name in after if name not in before)]
        input_side = self.direction == "input"
        for name in names:
            child = f"{path}.{name}" if path else name
            what = self._what(child)
            if name not in after:
                self._add(child, self._member_kind("removed"), "both", f"{what} removed", before[name], None)
            elif name not in before:
                required = name in new_required
                effect: Effect = "narrower" if required else "wider"
                suffix = " (required)" if required else " (optional)"
                self._add(child, self._member_kind("added"), effect if input_side else "words", f"{what} added{suffix}",
                          None, after[name])
            else:
                self.compare(child, before[name], after[name], depth + 1)
                if name in new_required and name not in old_required:
                    self._add(child, self._member_kind("required"), "narrower",
                              f"{what} is now required" if input_side else f"{what} is now always present")
                elif name in old_required and name not in new_required:
                    self._add(child, self._member_kind("optional"), "wider",
                              f"{what} is now optional" if input_side else f"{what} may now be missing")
        self._additional(path, old, new, depth)

    def _additional(self, path: str, old: dict[str, Any], new: dict[str, Any], depth: int) -> None:
        before, after = old.get("additionalProperties"), new.get("additionalProperties")
        if _key(before) == _key(after):
            return
        closed_before, closed_after = before is False, after is False
        what = self._what(path)
        if isinstance(before, dict) and isinstance(after, dict):
            self.compare(f"{path}.*" if path else "*", before, after, depth + 1)
        elif closed_after and not closed_before:
            self._add(path, "constraint-narrowed", "narrower", f"{what} no longer accepts other properties")
        elif closed_before and not closed_after:
            self._add(path, "constraint-widened", "wider", f"{what} now accepts other properties")
        else:
            self._add(path, "constraint-changed", "both", f"additionalProperties of {what} changed", before, after)

    def _items(self, path: str, old: dict[str, Any], new: dict[str, Any], depth: int) -> None:
        before, after = old.get("items"), new.get("items")
        if before is None and after is None:
            return
        self.compare(f"{path}[]", {} if before is None else before, {} if after is None else after, depth + 1)

    def _options(self, path: str, old: dict[str, Any], new: dict[str, Any], depth: int) -> None:
        before, after = _options(old), _options(new)
        if before is not None and after is not None:
            self._variants(path, before, after, depth)
        old_all, new_all = old.get("allOf"), new.get("allOf")
        if isinstance(old_all, list) and isinstance(new_all, list) and len(old_all) == len(new_all):
            for old_member, new_member in zip(old_all, new_all, strict=True):
                self.compare(path, old_member, new_member, depth + 1)
        elif _key(old_all) != _key(new_all):
            self._add(path, "schema-changed", "both", f"allOf of {self._what(path)} changed", old_all, new_all)

    def _variants(self, path: str, before: list[Any], after: list[Any], depth: int) -> None:
        old_resolved = [self._resolve(member, self.old_root)[0] for member in before]
        new_resolved = [self._resolve(member, self.new_root)[0] for member in after]
        new_keys = [_key(member) for member in new_resolved]
        old_keys = [_key(member) for member in old_resolved]
        removed = [i for i, key in enumerate(old_keys) if key not in new_keys]
        added = [i for i, key in enumerate(new_keys) if key not in old_keys]
        if len(removed) == 1 and len(added) == 1:
            self.compare(path, before[removed[0]], after[added[0]], depth + 1)
            return
        what = self._what(path)
        for index in removed:
            self._add(path, "option-removed", "narrower", f"{what} lost one of its accepted shapes "
                      f"({_shape(old_resolved[index])})", old_resolved[index], None)
        for index in added:
            self._add(path, "option-added", "wider", f"{what} gained an accepted shape ({_shape(new_resolved[index])})",
                      None, new_resolved[index])

    def _other(self, path: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        for keyword in sorted((set(old) | set(new)) - _HANDLED):
            if _key(old.get(keyword)) != _key(new.get(keyword)):
                self._add(path, "schema-changed", "both", f"`{keyword}` of {self._what(path)} changed",
                          old.get(keyword), new.get(keyword))
        if old.get("$ref") != new.get("$ref"):  # refs that could not be followed: compared as written
            self._add(path, "schema-changed", "both", f"the schema {self._what(path)} refers to changed",
                          old.get("$ref"), new.get("$ref"))


def _options(schema: Mapping[str, Any]) -> list[Any] | None:
    for keyword in ("anyOf", "oneOf"):
        value = schema.get(keyword)
        if isinstance(value, list):
            return value
    return None


def _values(schema: Mapping[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _list(values: Iterable[Any]) -> str:
    shown = [_shown(value, 40) for value in values]
    if len(shown) > 8:
        shown = [*shown[:8], f"and {len(shown) - 8} more"]
    return ", ".join(shown)


def _shape(schema: Any) -> str:
    if isinstance(schema, dict):
        kind = schema.get("type")
        if isinstance(kind, str | list):
            return kind if isinstance(kind, str) else " or ".join(map(str, kind))
        if "const" in schema or "enum" in schema:
            return "fixed values " + _list(_values(schema) or [])
    return _shown(schema, 40)
