"""OpenAPI schema objects to JSON Schema 2020-12, as tool input (request) or output (response) schemas.

One `SchemaConverter` serves a whole document. Each `$ref` is converted once per context and the
result shared by every tool that uses it (results are never mutated afterwards), so a big spec costs
about as much as its distinct schemas. A `$ref` met again while it is being converted is recursive:
it becomes `{"$ref": "#/$defs/NAME"}` and the tool's root schema carries `$defs` for it.

Only keywords JSON Schema 2020-12 knows are kept, each checked for the right shape, so the result
always passes the meta-schema; OpenAPI-only keywords are converted (`nullable`, boolean
`exclusiveMinimum`, `example`) or dropped (`xml`, `externalDocs`, `x-*`). `readOnly` properties
leave request schemas and `writeOnly` ones leave response schemas. `oneOf` becomes `anyOf`: real
specs' variants overlap (objects without `additionalProperties: false`), and `oneOf` would then
reject a correct call.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from castproxy.openapi.loader import SpecError
from castproxy.openapi.refs import RefResolver

Context = Literal["request", "response"]
REQUEST: Context = "request"
RESPONSE: Context = "response"

TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
NODE_BUDGET = 200_000
_DEF_NAME_INVALID = re.compile(r"[^A-Za-z0-9_.-]+")

_STRINGS = ("title", "description", "format", "pattern", "contentEncoding", "contentMediaType")
_NUMBERS = ("minimum", "maximum")
_COUNTS = (
    "minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "minContains", "maxContains",
)
_BOOLS = ("uniqueItems", "deprecated", "readOnly", "writeOnly")
_ANY = ("default", "const")
_SUBSCHEMA = (
    "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
    "unevaluatedProperties", "unevaluatedItems",
)
_SUBSCHEMA_MAPS = ("patternProperties", "dependentSchemas")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
# What an allOf member may hold for the members to be merged into one object schema.
_MERGEABLE = frozenset({"type", "properties", "required", "description", "title", "additionalProperties", "deprecated"})

_KIND: dict[str, str] = {}
for _names, _kind in (
    (_STRINGS, "str"), (_NUMBERS, "num"), (_COUNTS, "count"), (_BOOLS, "bool"), (_ANY, "any"),
    (_SUBSCHEMA, "schema"), (_SUBSCHEMA_MAPS, "schema_map"), (_SUBSCHEMA_LISTS, "schema_list"),
):
    for _name in _names:
        _KIND[_name] = _kind


class Sink:
    """What converting one schema needs besides the result: recursive defs used, and warnings."""

    __slots__ = ("needs", "warnings")

    def __init__(self) -> None:
        self.needs: set[tuple[str, str]] = set()
        self.warnings: list[str] = []


class SchemaConverter:
    def __init__(self, resolver: RefResolver) -> None:
        self.resolver = resolver
        self.where = "schema"  # names the operation being compiled, for errors
        self.budget = NODE_BUDGET  # schema objects one operation may still convert (reset per operation)
        self._memo: dict[tuple[str, str], tuple[Any, frozenset[tuple[str, str]], tuple[str, ...]]] = {}
        self._active: dict[tuple[str, str], bool] = {}  # refs being converted -> met again (recursive)
        self._defs: dict[tuple[str, str], Any] = {}
        self._def_needs: dict[tuple[str, str], frozenset[tuple[str, str]]] = {}
        self._def_names: dict[str, str] = {}
        self._def_keys: dict[tuple[str, str], tuple[str, str]] = {}  # ("#/$defs/NAME", context) -> key
        self._taken_names: set[str] = set()
        # id(converted object) -> (object, property names left out as readOnly/writeOnly); the object
        # is kept so its id cannot be reused while the entry exists.
        self._hidden: dict[int, tuple[Any, tuple[str, ...]]] = {}

    # -- public -------------------------------------------------------------------------------

    def convert(self, schema: Any, context: Context, sink: Sink) -> Any:
        """Convert one schema; recursive refs it uses are added to `sink.needs`."""
        return self._convert(schema, context, sink)

    def defs_for(self, needs: set[tuple[str, str]] | frozenset[tuple[str, str]]) -> dict[str, Any]:
        """The `$defs` a root schema needs for the recursive refs in `needs` (transitively)."""
        found: dict[str, Any] = {}
        pending = list(needs)
        while pending:
            key = pending.pop()
            name = self._def_names[key[0]]
            if name in found:
                continue
            found[name] = self._defs[key]
            pending.extend(self._def_needs[key])
        return dict(sorted(found.items()))

    def definition(self, schema: Any, context: Context = REQUEST) -> Any:
        """The body behind a `{"$ref": "#/$defs/NAME"}` produced here, else `schema` itself."""
        seen = 0
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 16:
            key = self._def_keys.get((schema["$ref"], context))
            if key is None or key not in self._defs:
                break
            schema = self._defs[key]
            seen += 1
        return schema

    def hidden_properties(self, schema: Any) -> tuple[str, ...]:
        entry = self._hidden.get(id(schema))
        return entry[1] if entry is not None and entry[0] is schema else ()

    # -- conversion ---------------------------------------------------------------------------

    def _convert(self, node: Any, context: Context, sink: Sink) -> Any:
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            sink.warnings.append(f"a schema is {type(node).__name__}, not an object; it accepts any value")
            return {}
        ref = node.get("$ref")
        if isinstance(ref, str):
            return self._reference(node, ref, context, sink)
        self.budget -= 1
        if self.budget < 0:  # YAML aliases can make a small file a huge tree; refs are converted once
            raise SpecError(f"{self.where}: schemas too large (over {NODE_BUDGET} schema objects for one operation)")

        out: dict[str, Any] = {}
        for key, value in node.items():
            kind = _KIND.get(key)
            if kind is None:
                if key in ("$dynamicRef", "$recursiveRef"):
                    sink.warnings.append(f"schema keyword {key} is not supported and was left out")
                continue
            if kind == "str":
                if isinstance(value, str):
                    out[key] = value
            elif kind == "num":
                if _is_number(value):
                    out[key] = value
            elif kind == "count":
                if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                    out[key] = value
            elif kind == "bool":
                if isinstance(value, bool):
                    out[key] = value
            elif kind == "any":
                out[key] = value
            elif kind == "schema":
                if isinstance(value, dict | bool):
                    out[key] = self._convert(value, context, sink)
            elif kind == "schema_map":
                if isinstance(value, dict):
                    out[key] = {name: self._convert(sub, context, sink) for name, sub in value.items()}
            elif isinstance(value, list) and value:  # schema_list
                converted = [self._convert(sub, context, sink) for sub in value]
                out["anyOf" if key == "oneOf" and "anyOf" not in node else key] = converted

        self._shape_keywords(node, out, context, sink)
        if "allOf" in out:
            out = self._merge_all_of(out)
        if node.get("nullable") is True:
            out = _nullable(out)
        return out

    def _shape_keywords(self, node: dict[str, Any], out: dict[str, Any], context: Context, sink: Sink) -> None:
        """The keywords whose OpenAPI form differs from JSON Schema 2020-12."""
        if "type" in node:
            kind = _type(node["type"])
            if kind is None:
                sink.warnings.append(f"schema type {node['type']!r} is not a JSON Schema type; left out")
            elif kind == "file":  # Swagger 2.0 file: bytes, sent base64-encoded
                out["type"] = "string"
                out.setdefault("contentEncoding", "base64")
            else:
                out["type"] = kind
        enum = node.get("enum")
        if isinstance(enum, list) and enum:
            unique: list[Any] = []
            for item in enum:
                if item not in unique:
                    unique.append(item)
            out["enum"] = unique
        for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            value = node.get(key)
            if value is True and bound in out:  # OpenAPI 3.0 / draft 4: a flag on minimum/maximum
                out[key] = out.pop(bound)
            elif _is_number(value):
                out[key] = value
        multiple = node.get("multipleOf")
        if _is_number(multiple) and multiple > 0:
            out["multipleOf"] = multiple
        if "examples" in node and isinstance(node["examples"], list):
            out["examples"] = node["examples"]
        elif "example" in node:
            out["examples"] = [node["example"]]
        dependent = node.get("dependentRequired")
        if isinstance(dependent, dict) and all(_is_names(v) for v in dependent.values()):
            out["dependentRequired"] = {k: list(dict.fromkeys(v)) for k, v in dependent.items()}

        items = node.get("items")
        if isinstance(items, dict | bool):
            out["items"] = self._convert(items, context, sink)
        elif isinstance(items, list):  # draft 4 tuple form
            out["prefixItems"] = [self._convert(sub, context, sink) for sub in items]

        hidden: list[str] = []
        properties = node.get("properties")
        if isinstance(properties, dict):
            converted: dict[str, Any] = {}
            for name, sub in properties.items():
                if self._is_hidden(sub, context, sink):
                    hidden.append(name)
                else:
                    converted[name] = self._convert(sub, context, sink)
            out["properties"] = converted
        required = node.get("required")
        if _is_names(required):
            names = [name for name in dict.fromkeys(required) if name not in hidden]
            if names:
                out["required"] = names
        if hidden:
            self._hidden[id(out)] = (out, tuple(hidden))

        discriminator = node.get("discriminator")
        if isinstance(discriminator, dict) and isinstance(discriminator.get("propertyName"), str):
            note = f"The `{discriminator['propertyName']}` property selects the variant"
            mapping = discriminator.get("mapping")
            if isinstance(mapping, dict) and mapping:
                note += " (" + ", ".join(str(value) for value in mapping) + ")"
            out["description"] = f"{out['description']}\n\n{note}." if out.get("description") else f"{note}."

    def _is_hidden(self, sub: Any, context: Context, sink: Sink) -> bool:
        flag = "readOnly" if context == REQUEST else "writeOnly"
        seen = 0
        while isinstance(sub, dict):
            if sub.get(flag) is True:
                return True
            ref = sub.get("$ref")
            if not isinstance(ref, str) or seen > 16:
                return False
            sub = self.resolver.resolve(ref, self.where)
            seen += 1
        return False

    def _reference(self, node: dict[str, Any], ref: str, context: Context, sink: Sink) -> Any:
        key = (ref, context)
        memo = self._memo.get(key)
        if memo is None:
            if key in self._active:
                self._active[key] = True
                sink.needs.add(key)
                return {"$ref": "#/$defs/" + self._def_name(ref)}
            target = self.resolver.resolve(ref, self.where)
            inner = Sink()
            self._active[key] = False
            try:
                body = self._convert(target, context, inner)
            finally:
                recursive = self._active.pop(key)
            # Output schemas keep every named schema as a def: they are for validation, not for a
            # model to read, and inlining GitHub's would publish megabytes of repeated schemas.
            if recursive or context == RESPONSE:
                self._defs[key] = body
                self._def_needs[key] = frozenset(inner.needs)
                inner.needs.add(key)
                body = {"$ref": "#/$defs/" + self._def_name(ref)}
                self._def_keys[(body["$ref"], context)] = key
            memo = (body, frozenset(inner.needs), tuple(inner.warnings))
            self._memo[key] = memo
        result, needs, warnings = memo
        if needs:
            sink.needs.update(needs)
        if warnings:
            sink.warnings.extend(warnings)
        if len(node) > 1:
            result = self._ref_siblings(node, result, context, sink)
        return result

    def _ref_siblings(self, node: dict[str, Any], result: Any, context: Context, sink: Sink) -> Any:
        """Keywords next to a `$ref` (3.1 allows them; 3.0 specs use them anyway): layered on a copy."""
        extra = {key: value for key, value in node.items() if key not in ("$ref", "nullable")}
        converted = self._convert(extra, context, sink) if extra else {}
        if converted:
            annotations = {"description", "title", "default", "deprecated", "readOnly", "writeOnly", "examples"}
            if isinstance(result, dict) and set(converted) <= annotations:
                result = {**result, **converted}
            else:
                result = {"allOf": [result, converted]}
        if node.get("nullable") is True:
            result = _nullable(result)
        return result

    def _def_name(self, ref: str) -> str:
        name = self._def_names.get(ref)
        if name is None:
            base = _DEF_NAME_INVALID.sub("_", ref.rsplit("/", 1)[-1]) or "schema"
            name, counter = base, 1
            while name in self._taken_names:
                counter += 1
                name = f"{base}_{counter}"
            self._taken_names.add(name)
            self._def_names[ref] = name
        return name

    def _merge_all_of(self, out: dict[str, Any]) -> dict[str, Any]:
        """allOf of plain object schemas becomes one object schema (clients and flattening need it)."""
        if out.get("type", "object") != "object":
            return out
        own = {key: value for key, value in out.items() if key != "allOf"}
        if not set(own) <= _MERGEABLE or own.get("additionalProperties", True) is not True:
            return out
        parts = [own, *out["allOf"]]
        properties: dict[str, Any] = {}
        required: list[str] = []
        hidden: set[str] = set(self.hidden_properties(out))
        annotations: dict[str, Any] = {}
        for part in parts:
            if not isinstance(part, dict) or not set(part) <= _MERGEABLE:
                return out
            if part.get("type", "object") != "object" or part.get("additionalProperties", True) is not True:
                return out
            for name, prop in part.get("properties", {}).items():
                if name in properties and properties[name] != prop:
                    properties[name] = {"allOf": [properties[name], prop]}
                else:
                    properties[name] = prop
            required.extend(part.get("required", ()))
            hidden.update(self.hidden_properties(part))
            for key in ("title", "description", "deprecated"):
                if key in part:
                    annotations.setdefault(key, part[key])
        merged: dict[str, Any] = {**annotations, "type": "object"}
        if properties:
            merged["properties"] = properties
        names = [name for name in dict.fromkeys(required) if name not in hidden]
        if names:
            merged["required"] = names
        if hidden:
            self._hidden[id(merged)] = (merged, tuple(sorted(hidden)))
        return merged


def _nullable(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if isinstance(kind, str):
        out = {**schema, "type": [kind, "null"]}
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        return out
    if isinstance(kind, list):
        return schema if "null" in kind else {**schema, "type": [*kind, "null"]}
    if "$ref" in schema or "allOf" in schema or "anyOf" in schema or "oneOf" in schema or "enum" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    return schema  # no type: already accepts null


def _type(value: Any) -> str | list[str] | None:
    if isinstance(value, str):
        return value if value in TYPES or value == "file" else None
    if isinstance(value, list) and value and all(isinstance(v, str) and v in TYPES for v in value):
        return list(dict.fromkeys(value))
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
