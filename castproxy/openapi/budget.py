"""Fitting one tool's schema into its byte budget (`max_schema_bytes`, measured as compact UTF-8 JSON).

What is included, collapsed or inlined, and why a collapse never refuses more: docs/architecture.md,
"Schema budget".
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterator
from typing import Any

import orjson

from castproxy.openapi.schema import DEFS_PREFIX, Context, SchemaConverter

__all__ = ["DEFAULT_MAX_SCHEMA_BYTES", "MIN_SCHEMA_BYTES", "SchemaFitter", "format_bytes", "size_of"]

DEFAULT_MAX_SCHEMA_BYTES = 32 * 1024
MIN_SCHEMA_BYTES = 1024
MAX_LISTED_COLLAPSES = 5
SHORT_DESCRIPTION = 120
COLLAPSED = "collapsed: too large"

SchemaPath = tuple[str | int, ...]
STUB, LEAN, FULL = 0, 1, 2  # how much of a named schema a tool includes
ROOM_STEP = 256  # plans are shared between tools whose room differs by less than this

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
_REF = re.compile(rb'"\$ref":"#/\$defs/([A-Za-z0-9_.-]+)"')
_MAYBE_UNSAFE = re.compile(rb'"(?:not|if|contains|oneOf|unevaluatedProperties|unevaluatedItems)":')
_DEFS_OVERHEAD = len(',"$defs":{}')
# Keywords whose value is one subschema, a list of them, or a map of them (where a collapse may look).
_ONE = ("items", "additionalProperties", "then", "else", "propertyNames", "not", "if", "contains",
        "unevaluatedProperties", "unevaluatedItems")
_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs")
_ONE_SET, _LISTS_SET, _MAPS_SET = frozenset(_ONE), frozenset(_LISTS), frozenset(_MAPS)
# Below these, dropping an assertion can make the schema reject more, not less.
_UNSAFE_CHILD = frozenset({"not", "if", "contains", "oneOf"})
_UNEVALUATED = ("unevaluatedProperties", "unevaluatedItems")


def size_of(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON: what the budget measures."""
    return len(_encoded(value))


def _encoded(value: Any) -> bytes:
    try:
        return orjson.dumps(value)  # several times faster than json's encoder, same bytes for JSON values
    except TypeError:  # an integer beyond 64 bits
        return _ENCODER.encode(value).encode()


def format_bytes(count: int) -> str:
    if count % 1024 == 0:
        return f"{count // 1024} KiB"
    return f"{count} bytes"


class _SchemaFacts:
    """What the fitter needs to know about one converted schema (a named one, or a tool's root)."""

    __slots__ = ("lean", "lean_size", "name", "pinned", "refs", "sites", "size", "stub", "stub_size")

    def __init__(self, name: str, size: int, refs: dict[str, int], pinned: tuple[str, ...]) -> None:
        self.name = name
        self.size = size
        self.refs = refs  # names referenced where a collapse may happen, with how many times, in order
        self.pinned = pinned  # names referenced where a collapse must not happen (under `not`, ...)
        self.sites: list[tuple[SchemaPath, str, bool]] | None = None  # where each reference is (found on first need)
        self.stub: dict[str, Any] | None = None
        self.stub_size = 0
        self.lean: Any = None
        self.lean_size = 0


def _scan(node: Any) -> tuple[int, dict[str, int], tuple[str, ...]]:
    """Size, references (each name with its number of uses) and the names used where a collapse must not
    happen (pinned: included whole, with everything they reference)."""
    text = _encoded(node)
    size = len(text)
    refs: dict[str, int] = {}
    for raw in _REF.findall(text):
        name = raw.decode()
        refs[name] = refs.get(name, 0) + 1
    pinned: tuple[str, ...] = ()
    if refs and _MAYBE_UNSAFE.search(text):
        counts: dict[str, int] = {}
        held: dict[str, None] = {}
        for _, name, unsafe in _ref_sites(node):
            counts[name] = counts.get(name, 0) + 1
            if unsafe:
                held[name] = None
        refs, pinned = counts, tuple(held)
    return size, refs, pinned


def _ref_sites(root: Any) -> list[tuple[SchemaPath, str, bool]]:
    """Every `{"$ref": "#/$defs/NAME"}` under `root`: (path, NAME, whether it sits where a collapse
    must not happen)."""
    sites: list[tuple[SchemaPath, str, bool]] = []

    def visit(node: Any, path: SchemaPath, unsafe: bool) -> None:
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(DEFS_PREFIX):
            sites.append((path, ref[len(DEFS_PREFIX):], unsafe))
        inner = unsafe or "unevaluatedProperties" in node or "unevaluatedItems" in node
        for key, value in node.items():
            if key in _MAPS_SET:
                if isinstance(value, dict):
                    for name, sub in value.items():
                        if isinstance(sub, dict):
                            visit(sub, (*path, key, name), inner)
            elif key in _LISTS_SET:
                if isinstance(value, list):
                    for index, sub in enumerate(value):
                        if isinstance(sub, dict):
                            visit(sub, (*path, key, index), inner or key in _UNSAFE_CHILD)
            elif key in _ONE_SET and isinstance(value, dict):
                visit(value, (*path, key), inner or key in _UNSAFE_CHILD)

    visit(root, (), False)
    return sites


def _at(node: Any, path: SchemaPath) -> Any:
    for step in path:
        node = node[step]
    return node


def _replace(node: Any, replacements: dict[SchemaPath, Any]) -> Any:
    """A copy of `node` with the values at the given paths replaced; untouched branches stay shared."""
    if not replacements:
        return node
    if () in replacements:
        return replacements[()]
    heads: dict[str | int, dict[SchemaPath, Any]] = {}
    for path, value in replacements.items():
        heads.setdefault(path[0], {})[path[1:]] = value
    copy: Any = dict(node) if isinstance(node, dict) else list(node)
    for head, rest in heads.items():
        copy[head] = _replace(node[head], rest)
    return copy


def _lean(node: Any) -> Any:
    """`node` with every description cut to its first sentence and `examples` left out (validation unchanged)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] | None = None
    for key, value in node.items():
        if key == "examples":
            new: Any = _DROP
        elif key in ("description", "title") and isinstance(value, str):
            new = _short(value) if len(value) > SHORT_DESCRIPTION else value
        elif key in _ONE_SET:
            new = _lean(value)
        elif key in _LISTS_SET and isinstance(value, list):
            items = [_lean(sub) for sub in value]
            new = items if any(a is not b for a, b in zip(items, value, strict=True)) else value
        elif key in _MAPS_SET and isinstance(value, dict):
            subs = {name: _lean(sub) for name, sub in value.items()}
            new = subs if any(subs[k] is not value[k] for k in value) else value
        else:
            continue
        if new is not value:
            if out is None:
                out = dict(node)
            if new is _DROP:
                del out[key]
            else:
                out[key] = new
    return node if out is None else out


_DROP = object()


def _is_leaf(node: Any) -> bool:
    """A schema with no subschema and no reference: collapsing it can only drop its prose."""
    return isinstance(node, dict) and "$ref" not in node and not any(
        key in node for key in (*_ONE, *_LISTS, *_MAPS))


def _bare(node: dict[str, Any]) -> dict[str, Any]:
    """A leaf without its prose: it accepts exactly what it did."""
    return {key: value for key, value in node.items() if key not in ("description", "title", "examples")}


def _short(description: Any) -> str:
    if not isinstance(description, str) or not description.strip():
        return ""
    text = description.strip().split("\n", 1)[0]
    cut = text.find(". ")
    if 0 < cut < SHORT_DESCRIPTION:
        text = text[: cut + 1]
    if len(text) > SHORT_DESCRIPTION:
        text = text[: SHORT_DESCRIPTION - 1].rstrip() + "…"
    return text


class _InclusionPlan:
    """Which named schemas one set of references includes, how much of each, and which are inlined;
    shared by every tool with those references and that room."""

    __slots__ = ("built", "collapsed", "defs", "fitter", "included", "inline", "state", "total")

    def __init__(self, fitter: SchemaFitter, state: dict[str, int], inline: set[str], total: int) -> None:
        self.fitter = fitter
        self.state = state
        self.inline = inline
        self.total = total  # bytes the named schemas add, at most (inlining only shortens)
        self.built: dict[str, Any] = {}
        self.defs: dict[str, Any] = {}
        self.collapsed: list[str] = []
        self.included: list[str] = []

    def content(self, name: str) -> Any:
        """What the schema `name` becomes in this plan: its body (whole or lean) with its own references
        inlined or kept, or its stub."""
        done = self.built.get(name)
        if done is None:
            fitter = self.fitter
            level = self.state[name]
            if level == STUB:
                done = fitter._stub(name)[0]
            else:
                info = fitter._info(name)
                if info.sites is None:
                    info.sites = _ref_sites(fitter._body(name))
                body = fitter._body(name) if level == FULL else fitter._lean(name)[0]
                done = _replace(body, self.replacements(info.sites, body))
            self.built[name] = done
        return done

    def replacements(self, sites: list[tuple[SchemaPath, str, bool]], node: Any) -> dict[SchemaPath, Any]:
        """The inlined schemas for the references at `sites` in `node`."""
        replacements: dict[SchemaPath, Any] = {}
        for path, name, _ in sites:
            if name not in self.inline or name not in self.state:
                continue
            site = _at(node, path)
            value = self.content(name)
            if len(site) > 1 and isinstance(value, dict):  # a reference with annotations beside it
                merged = {**value, **{key: item for key, item in site.items() if key != "$ref"}}
                if self.state[name] == STUB and "description" in value:
                    merged["description"] = value["description"]
                value = merged
            replacements[path] = value
        return replacements


class SchemaFitter:
    """Fits the schemas of one document's tools, in one context, into a budget; shares its analyses."""

    def __init__(self, converter: SchemaConverter, context: Context, budget: int) -> None:
        self.converter = converter
        self.context = context
        self.budget = budget
        self._infos: dict[str, _SchemaFacts] = {}
        self._types: dict[str, frozenset[str] | None] = {}
        self._plans: dict[tuple[Any, ...], _InclusionPlan] = {}

    # -- public -------------------------------------------------------------------------------

    def fit(self, root: dict[str, Any]) -> tuple[dict[str, Any], list[str], list[str]]:
        """`root` with its named schemas as `$defs` or inlined, within the budget.

        Returns the schema, what was collapsed (for the warning) and the warnings of the named
        schemas it includes."""
        target = self.budget
        schema: dict[str, Any] = root
        collapsed: list[str] = []
        included: list[str] = []
        for _ in range(4):
            schema, collapsed, included, bound = self._fit(root, target)
            # `bound` is exact or above the size (inlining only shortens): measure only when it is over.
            over = (size_of(schema) if bound > self.budget else bound) - self.budget
            if over <= 0:
                break
            target -= over + 64
        warnings: list[str] = []
        for name in included:
            found = self.converter.definition_for(DEFS_PREFIX + name, self.context)
            if found is not None:
                warnings.extend(found.warnings)
        return schema, collapsed, warnings

    # -- one attempt --------------------------------------------------------------------------

    def _fit(self, root: dict[str, Any], budget: int) -> tuple[dict[str, Any], list[str], list[str], int]:
        """One attempt: the schema, what was collapsed, the named schemas included, and a bound on its size."""
        size, refs, pinned = _scan(root)
        if not refs and size <= budget:
            return root, [], [], size
        collapsed: list[str] = []
        forced = self._closure(pinned, set())
        stub_costs = sum(self._stub_cost(name) for name in refs if name not in forced)
        allowance = budget - self._cost(forced, LEAN) - stub_costs - _DEFS_OVERHEAD
        if size > allowance:
            root = _lean(root)  # shorter prose first: the root's arguments and structure matter more
            size = size_of(root)
            if size > allowance:
                root, collapsed = self._shrink(root, allowance)
                size, refs, pinned = _scan(root)
                forced = self._closure(pinned, set())
        # Tools with the same references and about the same room share one plan (Graph: 4,758 -> 1,153).
        room = (budget - size) // ROOM_STEP * ROOM_STEP
        key = (tuple(refs.items()), tuple(forced), room)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(refs, forced, room)
        out = _replace(root, plan.replacements(_ref_sites(root), root))
        if plan.defs:
            out = {**out, "$defs": plan.defs}
        return out, [*collapsed, *plan.collapsed], plan.included, size + plan.total

    def _plan(self, refs: dict[str, int], forced: list[str], room: int) -> _InclusionPlan:
        state, total = self._grow(refs, forced, room, FULL)
        if STUB in state.values():  # structure before prose: every schema lean, then whole where room is left
            state, total = self._grow(refs, forced, room, LEAN)
            for name, level in state.items():
                if level == LEAN:
                    delta = self._info(name).size - self._lean(name)[1]
                    if total + delta <= room:
                        state[name] = FULL
                        total += delta
        counts: dict[str, int] = dict(refs)
        for name, level in state.items():
            if level != STUB:
                for ref, count in self._info(name).refs.items():
                    counts[ref] = counts.get(ref, 0) + count
        inline: set[str] = set()
        for name, level in state.items():
            count = counts.get(name, 0)
            info = self._info(name)
            size = self._size(name, level)
            leaf = level == STUB or (not info.refs and not info.pinned)
            marker = len(name) + 19  # {"$ref":"#/$defs/NAME"}
            if count <= 1 or (leaf and count * size <= size + self._entry(name) + count * marker):
                inline.add(name)
        plan = _InclusionPlan(self, state, inline, total)
        plan.defs = {name: plan.content(name) for name in sorted(state) if name not in inline and counts.get(name, 0)}
        used = [name for name in state if counts.get(name, 0)]
        plan.collapsed = [f"schema {name}" for name in sorted(name for name in used if state[name] == STUB)]
        plan.included = [name for name in used if state[name] != STUB]
        return plan

    def _grow(self, refs: dict[str, int], forced: list[str], room: int, level: int) -> tuple[dict[str, int], int]:
        """Breadth first from the root: each named schema at `level` while the room allows, else a stub."""
        state: dict[str, int] = dict.fromkeys(forced, level)
        total = self._cost(forced, level) + _DEFS_OVERHEAD
        queue: deque[str] = deque()
        for name in [*refs, *(r for f in forced for r in self._info(f).refs)]:
            if name not in state:
                state[name] = STUB
                total += self._stub_cost(name)
                queue.append(name)
        while queue:
            name = queue.popleft()
            info = self._info(name)
            extra = self._closure(info.pinned, [n for n, included in state.items() if included != STUB])
            fresh = [r for r in info.refs if r not in state and r not in extra]
            if extra:
                fresh += [r for f in extra for r in self._info(f).refs if r not in state and r not in extra]
                fresh = list(dict.fromkeys(fresh))
            delta = self._size(name, level) - self._stub(name)[1] + self._cost(extra, level)
            for r in fresh:
                delta += self._stub_cost(r)
            if total + delta > room:
                continue
            total += delta
            state[name] = level
            for f in extra:
                state[f] = level
            for r in fresh:
                state[r] = STUB
                queue.append(r)
        return state, total

    def _size(self, name: str, level: int) -> int:
        if level == FULL:
            return self._info(name).size
        return self._lean(name)[1] if level == LEAN else self._stub(name)[1]

    def _cost(self, names: list[str], level: int) -> int:
        return sum(self._size(name, level) + self._entry(name) for name in names)

    def _closure(self, names: Any, done: Any) -> list[str]:
        """`names` and everything they reference, all to be included whole."""
        if not names:
            return []
        found: dict[str, None] = {}
        pending = [name for name in names if name not in done]
        while pending:
            name = pending.pop()
            if name in found or name in done:
                continue
            found[name] = None
            info = self._info(name)
            pending.extend(info.refs)
            pending.extend(info.pinned)
        return list(found)

    # -- a root too big on its own ------------------------------------------------------------

    def _shrink(self, root: dict[str, Any], allowance: int) -> tuple[dict[str, Any], list[str]]:
        """Collapse the root's deepest levels, widest first within the last level cut, until it fits."""
        nodes = _tree(root)
        if not nodes:
            return root, []
        leaves = [_is_leaf(_at(root, path)) for path, _, _ in nodes]
        stubs = [_bare(_at(root, path)) if leaf else self._collapse(_at(root, path))
                 for (path, _, _), leaf in zip(nodes, leaves, strict=True)]
        savings = [size_of(_at(root, path)) - size_of(stub) for (path, _, _), stub in zip(nodes, stubs, strict=True)]
        total = size_of(root)
        chosen: set[int] = set()
        level = max(depth for _, depth, _ in nodes)
        # Whole levels go, from the deepest up, while that is not enough...
        while level >= 1:
            gain = _level_gain(nodes, savings, chosen, level)
            if total - gain <= allowance or level == 1:
                break
            total -= gain
            below = _saved_below(nodes, savings, chosen)
            taken = {i for i, (_, depth, _) in enumerate(nodes) if depth == level and savings[i] > below.get(i, 0)}
            chosen = taken | {j for j in chosen if not any(a in taken for a in _ancestor_indexes(j, nodes))}
            level -= 1
        # ...then, in the level that suffices, the widest subtrees first (the top-level arguments stay,
        # as their types when collapsed themselves).
        below = _saved_below(nodes, savings, chosen)
        at_level = [i for i, (_, depth, _) in enumerate(nodes) if depth == level]
        at_level.sort(key=lambda i: (-(savings[i] - below.get(i, 0)), i))
        for i in at_level:
            if total <= allowance:
                break
            gain = savings[i] - below.get(i, 0)
            if gain > 0:
                total -= gain
                chosen.add(i)
        chosen = {i for i in chosen if not any(a in chosen for a in _ancestor_indexes(i, nodes))}
        replacements = {nodes[i][0]: stubs[i] for i in sorted(chosen)}
        described = [_argument_path(nodes[i][0]) for i in sorted(chosen) if not leaves[i]]
        bare = sum(1 for i in chosen if leaves[i])
        if bare:
            described.append(f"the descriptions of {bare} argument{'s' if bare > 1 else ''} or properties")
        return _replace(root, replacements), described

    # -- stubs --------------------------------------------------------------------------------

    def _collapse(self, node: Any, name: str | None = None) -> Any:
        """A permissive stand-in for `node`: its types, required properties (typed) and a note."""
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if name is None and isinstance(ref, str) and set(node) <= {"$ref", "description", "title"} \
                and self.converter.definition_for(ref, self.context) is not None:
            return self._stub(ref[len(DEFS_PREFIX):])[0]
        body = node
        types = self._types_of(body, set())
        stub: dict[str, Any] = {}
        if types:
            stub["type"] = sorted(types)[0] if len(types) == 1 else sorted(types)
        what = f"schema {name} {COLLAPSED}" if name else COLLAPSED
        short = _short(body.get("description"))
        stub["description"] = f"{short} ({what})" if short else f"({what}; any value of this type is accepted)"
        required = body.get("required")
        props = body.get("properties")
        if isinstance(required, list) and required and (not types or "object" in types):
            stub["required"] = list(required)
            if isinstance(props, dict):
                typed: dict[str, Any] = {}
                for prop in required:
                    if prop in props:
                        prop_types = self._types_of(props[prop], set())
                        typed[prop] = {"type": sorted(prop_types)[0] if len(prop_types) == 1 else sorted(
                            prop_types)} if prop_types else {}
                if typed:
                    stub["properties"] = typed
        return stub

    def _lean(self, name: str) -> tuple[Any, int]:
        """The named schema with its prose cut to first sentences and its examples left out."""
        info = self._info(name)
        if info.lean is None:
            info.lean = _lean(self._body(name))
            info.lean_size = size_of(info.lean)
        return info.lean, info.lean_size

    def _stub(self, name: str) -> tuple[dict[str, Any], int]:
        info = self._info(name)
        if info.stub is None:
            info.stub = self._collapse(self._body(name), name)
            info.stub_size = size_of(info.stub)
        return info.stub, info.stub_size

    def _stub_cost(self, name: str) -> int:
        return self._stub(name)[1] + self._entry(name)

    @staticmethod
    def _entry(name: str) -> int:
        return len(name) + 4  # "NAME": and a comma

    def _types_of(self, node: Any, seen: set[str]) -> frozenset[str] | None:
        """The JSON types `node` admits, when its keywords say (None: any, or cannot tell)."""
        if not isinstance(node, dict):
            return None
        own = node.get("type")
        found: frozenset[str] | None = None
        if isinstance(own, str):
            found = frozenset({own})
        elif isinstance(own, list) and own:
            found = frozenset(own)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(DEFS_PREFIX):
            name = ref[len(DEFS_PREFIX):]
            if name not in seen:
                target = self._def_types(name, seen)
                found = target if found is None else (found & target if target is not None else found)
        for key in ("enum", "const"):
            if found is None and key in node:
                values = node[key] if key == "enum" and isinstance(node[key], list) else [node[key]]
                found = frozenset(_json_type(value) for value in values)
        for key in ("anyOf", "oneOf"):
            if found is None and isinstance(node.get(key), list):
                union: set[str] = set()
                for sub in node[key]:
                    sub_types = self._types_of(sub, seen)
                    if sub_types is None:
                        union = set()
                        break
                    union |= sub_types
                found = frozenset(union) or None
        if found is None and isinstance(node.get("allOf"), list):
            for sub in node["allOf"]:
                found = self._types_of(sub, seen)
                if found is not None:
                    break
        if found is not None and "number" in found:
            found = found - {"integer"}
        return found

    def _def_types(self, name: str, seen: set[str]) -> frozenset[str] | None:
        if name not in self._types:
            self._types[name] = self._types_of(self._body(name), seen | {name})
        return self._types[name]

    # -- named schemas ------------------------------------------------------------------------

    def _body(self, name: str) -> Any:
        found = self.converter.definition_for(DEFS_PREFIX + name, self.context)
        return found.body if found is not None else {}

    def _info(self, name: str) -> _SchemaFacts:
        info = self._infos.get(name)
        if info is None:
            size, refs, pinned = _scan(self._body(name))
            info = self._infos[name] = _SchemaFacts(name, size, refs, pinned)
        return info


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _tree(root: dict[str, Any]) -> list[tuple[SchemaPath, int, int]]:
    """The collapsible subschemas of the root's arguments: (path, depth, parent index); arguments are depth 1."""
    nodes: list[tuple[SchemaPath, int, int]] = []

    def visit(node: Any, path: SchemaPath, depth: int, parent: int, unsafe: bool) -> None:
        if not isinstance(node, dict):
            return
        index = parent
        if not unsafe:
            index = len(nodes)
            nodes.append((path, depth, parent))
        inner = unsafe or any(key in node for key in _UNEVALUATED)
        for key in _ONE:
            if key in node:
                visit(node[key], (*path, key), depth + 1, index, inner or key in _UNSAFE_CHILD)
        for key in _LISTS:
            if isinstance(node.get(key), list):
                for position, sub in enumerate(node[key]):
                    visit(sub, (*path, key, position), depth + 1, index, inner or key in _UNSAFE_CHILD)
        for key in _MAPS:
            if isinstance(node.get(key), dict):
                for name, sub in node[key].items():
                    visit(sub, (*path, key, name), depth + 1, index, inner)

    properties = root.get("properties")
    if isinstance(properties, dict):
        for name, sub in properties.items():
            visit(sub, ("properties", name), 1, -1, False)
    return nodes


def _ancestor_indexes(index: int, nodes: list[tuple[SchemaPath, int, int]]) -> Iterator[int]:
    parent = nodes[index][2]
    while parent != -1:
        yield parent
        parent = nodes[parent][2]


def _saved_below(nodes: list[tuple[SchemaPath, int, int]], savings: list[int], chosen: set[int]) -> dict[int, int]:
    """For each node, what the collapses already chosen beneath it save."""
    below: dict[int, int] = {}
    for i in chosen:
        for ancestor in _ancestor_indexes(i, nodes):
            below[ancestor] = below.get(ancestor, 0) + savings[i]
    return below


def _level_gain(nodes: list[tuple[SchemaPath, int, int]], savings: list[int], chosen: set[int], level: int) -> int:
    """What collapsing every node at `level` saves beyond the collapses already chosen (all deeper)."""
    below = _saved_below(nodes, savings, chosen)
    return sum(max(savings[i] - below.get(i, 0), 0) for i, (_, depth, _) in enumerate(nodes) if depth == level)


def _argument_path(path: SchemaPath) -> str:
    """`properties/body/properties/members/items` -> `body.members[]` (how a user names that part)."""
    parts: list[str] = []
    steps = list(path)
    i = 0
    while i < len(steps):
        step = steps[i]
        if step == "properties" and i + 1 < len(steps):
            parts.append(("." if parts else "") + str(steps[i + 1]))
            i += 2
        elif step == "items":
            parts.append("[]")
            i += 1
        elif step in _LISTS and i + 1 < len(steps):
            parts.append(f"({step}[{steps[i + 1]}])")
            i += 2
        else:
            parts.append(f"({step})")
            i += 1
    return "argument " + "".join(parts)
