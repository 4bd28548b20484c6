"""Random values a compiled JSON Schema accepts: the calls a full schema allows, to feed to its collapsed form.

`witness` draws a value aimed at `schema` (resolving `#/$defs/...` against `root`); it does not promise
validity (patterns, `not`, `allOf` of conflicting parts), so callers keep only the draws the full
schema's validator accepts. `Unsatisfiable` means no value was found this time.
"""

from __future__ import annotations

import random
from typing import Any

import regress

MAX_DEPTH = 24
_WORDS = ["", "a", "abc", "A1", "x-1", "hello world", "2024-01-02", "7", "ü", "a_b.c", "ID-42", "arn:aws:x"]


class Unsatisfiable(Exception):
    pass


def witness(schema: Any, rng: random.Random, root: Any = None, depth: int = 0) -> Any:
    root = schema if root is None else root
    if depth > MAX_DEPTH:
        raise Unsatisfiable
    if schema is True or schema == {}:
        return _scalar(rng)
    if schema is False or not isinstance(schema, dict):
        raise Unsatisfiable
    if isinstance(schema.get("$ref"), str):
        target = root
        for step in schema["$ref"].lstrip("#/").split("/"):
            target = target[step]
        return witness(target, rng, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list):
        return rng.choice(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return witness(rng.choice(schema[key]), rng, root, depth + 1)
    if isinstance(schema.get("allOf"), list):
        return _all_of(schema, rng, root, depth)
    kinds = schema.get("type")
    if isinstance(kinds, list):
        kind = rng.choice(kinds)
    elif isinstance(kinds, str):
        kind = kinds
    elif "properties" in schema or "required" in schema:
        kind = "object"
    elif "items" in schema or "prefixItems" in schema:
        kind = "array"
    else:
        return _scalar(rng)
    return _of_type(kind, schema, rng, root, depth)


def _all_of(schema: dict[str, Any], rng: random.Random, root: Any, depth: int) -> Any:
    """Objects: the union of the parts' properties and required names; else the first part."""
    properties: dict[str, Any] = dict(schema.get("properties") or {})
    required: list[str] = list(schema.get("required") or [])
    for part in schema["allOf"]:
        while isinstance(part, dict) and isinstance(part.get("$ref"), str):
            target = root
            for step in part["$ref"].lstrip("#/").split("/"):
                target = target[step]
            part = target
        if not isinstance(part, dict):
            continue
        if part.get("type", "object") != "object" and "properties" not in part:
            return witness(part, rng, root, depth + 1)
        properties.update(part.get("properties") or {})
        required.extend(part.get("required") or [])
    return _of_type("object", {"properties": properties, "required": required}, rng, root, depth)


def _of_type(kind: str, schema: dict[str, Any], rng: random.Random, root: Any, depth: int) -> Any:
    if kind == "null":
        return None
    if kind == "boolean":
        return rng.random() < 0.5
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1000))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 1000))
        low, high = int(low) + 1, int(high) - 1
        if low > high:
            raise Unsatisfiable
        value = rng.randint(low, high)
        return value if kind == "integer" or rng.random() < 0.5 else value + 0.5
    if kind == "string":
        return _string(schema, rng)
    if kind == "array":
        low = schema.get("minItems", 0)
        high = min(schema.get("maxItems", low + 2), low + 2)
        if depth > MAX_DEPTH // 2:
            high = low
        prefix = schema.get("prefixItems") or []
        items = [witness(sub, rng, root, depth + 1) for sub in prefix]
        item_schema = schema.get("items", True)
        while len(items) < rng.randint(low, max(low, high)):
            items.append(witness(item_schema, rng, root, depth + 1))
        return items
    if kind == "object":
        out: dict[str, Any] = {}
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or [])
        for name, sub in properties.items():
            if name in required or (depth < MAX_DEPTH // 2 and rng.random() < 0.5):
                out[name] = witness(sub, rng, root, depth + 1)
        for name in required - set(out):
            out[name] = _scalar(rng)
        if schema.get("additionalProperties", True) is not False and rng.random() < 0.2:
            out.setdefault("extra_" + str(rng.randint(0, 9)), _scalar(rng))
        return out
    raise Unsatisfiable


def _string(schema: dict[str, Any], rng: random.Random) -> str:
    low, high = schema.get("minLength", 0), schema.get("maxLength", 40)
    candidates = [word for word in _WORDS if low <= len(word) <= high] or ["x" * low]
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        regex = regress.Regex(pattern, "u")
        candidates = [word for word in candidates if regex.find(word) is not None]
        if not candidates:
            raise Unsatisfiable
    return rng.choice(candidates)


def _scalar(rng: random.Random) -> Any:
    return rng.choice([None, True, 3, 2.5, "text", [1, "a"], {"k": "v"}])


_SAME_INSTANCE = ("anyOf", "allOf", "oneOf", "not", "if", "then", "else", "dependentSchemas")


def has_empty_cycle(root: dict[str, Any]) -> bool:
    """True when a `$defs` entry reaches itself without descending into the value (`{"$ref": itself}`,
    `anyOf: [itself]`): validators recurse forever on such a schema, whatever the value."""
    defs = root.get("$defs") or {}

    def direct(node: Any) -> set[str]:
        found: set[str] = set()
        if not isinstance(node, dict):
            return found
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            found.add(ref[len("#/$defs/"):])
        for key in _SAME_INSTANCE:
            value = node.get(key)
            subs = value.values() if isinstance(value, dict) and key == "dependentSchemas" else (
                value if isinstance(value, list) else [value])
            for sub in subs:
                found |= direct(sub)
        return found

    edges = {name: direct(body) for name, body in defs.items()}
    for start in edges:
        seen: set[str] = set()
        pending = list(edges[start])
        while pending:
            name = pending.pop()
            if name == start:
                return True
            if name not in seen:
                seen.add(name)
                pending.extend(edges.get(name, ()))
    return False


_SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
                  "unevaluatedProperties", "unevaluatedItems")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs")


def schema_patterns(schema: Any) -> set[str]:
    """Every `pattern` and `patternProperties` key in a schema, found through schema keywords only (a
    property named `pattern` is not one)."""
    found: set[str] = set()
    pending = [schema]
    while pending:
        node = pending.pop()
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("pattern"), str):
            found.add(node["pattern"])
        if isinstance(node.get("patternProperties"), dict):
            found.update(node["patternProperties"])
        pending.extend(node[key] for key in _SUBSCHEMA_ONE if key in node)
        for key in _SUBSCHEMA_LISTS:
            if isinstance(node.get(key), list):
                pending.extend(node[key])
        for key in _SUBSCHEMA_MAPS:
            if isinstance(node.get(key), dict):
                pending.extend(node[key].values())
    return found
