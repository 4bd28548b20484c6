"""OpenAPI schema objects to JSON Schema 2020-12, as tool input (request) or output (response) schemas.

Each named schema is converted once per context and shared as `#/$defs/NAME`; the keyword rules are in
docs/architecture.md, "Schema conversion".
"""

from __future__ import annotations

import re
from typing import Any, Literal

from castproxy.openapi.loader import SpecError
from castproxy.openapi.patterns import ecma_pattern
from castproxy.openapi.refs import RefResolver

__all__ = ["DEFS_PREFIX", "NODE_BUDGET", "REQUEST", "RESPONSE", "Context", "SchemaConverter"]

Context = Literal["request", "response"]
REQUEST: Context = "request"
RESPONSE: Context = "response"

TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
NODE_BUDGET = 200_000
DEFS_PREFIX = "#/$defs/"
MAX_LISTED_VARIANTS = 12  # Graph's base entity has over 2,000 discriminator values
_DEF_NAME_INVALID = re.compile(r"[^A-Za-z0-9_.-]+")

_STRINGS = ("title", "description", "format", "contentEncoding", "contentMediaType")
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

_SHAPE_KEYS = frozenset({
    "type", "enum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "examples", "example", "dependentRequired",
    "items", "properties", "required", "discriminator",
})

_KIND: dict[str, str] = {}
for _names, _kind in (
    (_STRINGS, "str"), (_NUMBERS, "num"), (_COUNTS, "count"), (_BOOLS, "bool"), (_ANY, "any"),
    (_SUBSCHEMA, "schema"), (_SUBSCHEMA_MAPS, "schema_map"), (_SUBSCHEMA_LISTS, "schema_list"),
):
    for _name in _names:
        _KIND[_name] = _kind


class Definition:
    """One named schema converted in one context, shared by every tool that reaches it."""

    __slots__ = ("body", "key", "name", "warnings")

    def __init__(self, key: tuple[str, Context], name: str) -> None:
        self.key = key
        self.name = name
        self.body: Any = None  # set once converted
        self.warnings: tuple[str, ...] = ()


class SchemaConverter:
    def __init__(self, resolver: RefResolver) -> None:
        self.resolver = resolver
        self.where = "schema"  # names the operation being compiled, for errors
        self.origin = "schema"  # names the parameter, body or named schema being converted, for warnings
        self.budget = NODE_BUDGET  # schema objects one operation may still convert (reset per operation)
        self._path: list[str] = []
        self._definitions: dict[tuple[str, Context], Definition] = {}
        self._by_ref: dict[tuple[str, Context], Definition] = {}  # ("#/$defs/NAME", context) -> definition
        self._active: set[tuple[str, Context]] = set()  # definitions being converted (a cycle meets one again)
        self._def_names: dict[str, str] = {}
        self._taken_names: set[str] = set()
        self._markers: dict[str, dict[str, str]] = {}
        # id(converted object) -> (object, property names left out as readOnly/writeOnly); the object
        # is kept so its id cannot be reused while the entry exists.
        self._hidden: dict[int, tuple[Any, tuple[str, ...]]] = {}

    # -- public -------------------------------------------------------------------------------

    def convert(self, schema: Any, context: Context, warnings: list[str], origin: str | None = None) -> Any:
        """Convert one schema; named schemas in it stay `{"$ref": "#/$defs/NAME"}` references."""
        if origin is not None:
            self.origin, self._path = origin, []
        return self._convert(schema, context, warnings)

    def definition_for(self, ref: str, context: Context) -> Definition | None:
        """The definition a `#/$defs/NAME` reference produced here stands for (converted), else None."""
        found = self._by_ref.get((ref, context))
        if found is not None and found.body is None:
            self._convert_definition(found)
        return found

    def definition(self, schema: Any, context: Context = REQUEST, warnings: list[str] | None = None) -> Any:
        """The body behind a `{"$ref": "#/$defs/NAME"}` produced here, else `schema` itself. A caller that
        copies from the body passes `warnings`, which then gets the definition's warnings."""
        seen = 0
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 16:
            found = self._by_ref.get((schema["$ref"], context))
            if found is None or found.key in self._active:
                break
            if found.body is None:
                self._convert_definition(found)
            if warnings is not None:
                warnings.extend(found.warnings)
            schema = found.body
            seen += 1
        return schema

    def hidden_properties(self, schema: Any) -> tuple[str, ...]:
        entry = self._hidden.get(id(schema))
        return entry[1] if entry is not None and entry[0] is schema else ()

    # -- conversion ---------------------------------------------------------------------------

    def _convert(self, node: Any, context: Context, warnings: list[str]) -> Any:
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            warnings.append(f"{self._here()}: a schema is {type(node).__name__}, not an object; it accepts any value")
            return {}
        ref = node.get("$ref")
        if isinstance(ref, str):
            return self._reference(node, ref, context, warnings)
        self.budget -= 1
        if self.budget < 0:  # YAML aliases can make a small file a huge tree; refs are converted once
            raise SpecError(f"{self.where}: schemas too large (over {NODE_BUDGET} schema objects for one operation)")

        out: dict[str, Any] = {}
        loosen = False
        for key, value in node.items():
            kind = _KIND.get(key)
            if kind is None:
                if key == "pattern" and isinstance(value, str):
                    self._pattern(value, out, warnings)
                elif key in ("$dynamicRef", "$recursiveRef"):
                    warnings.append(f"{self._here()}: schema keyword {key} is not supported and was left out")
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
            else:
                # A dropped patternProperties key leaves its names to `additionalProperties`: dropped too, so as
                # not to refuse what the pattern allowed.
                loosen = not self._subschemas(node, key, value, kind, out, context, warnings) or loosen

        if loosen:
            out.pop("additionalProperties", None)
            out.pop("unevaluatedProperties", None)
        self._shape_keywords(node, out, context, warnings)
        if "allOf" in out:
            out = self._merge_all_of(out, context, warnings)
        if node.get("nullable") is True:
            out = _nullable(out)
        return out

    def _subschemas(
        self, node: dict[str, Any], key: str, value: Any, kind: str, out: dict[str, Any], context: Context,
        warnings: list[str],
    ) -> bool:
        """A keyword holding a schema, a map or a list of them, converted into `out`; False when a
        patternProperties key had to be left out."""
        if kind == "schema":
            if isinstance(value, dict | bool):
                self._path.append(key)
                out[key] = self._convert(value, context, warnings)
                self._path.pop()
        elif kind == "schema_map":
            if isinstance(value, dict):
                out[key], complete = self._schema_map(key, value, context, warnings)
                return complete
        elif isinstance(value, list) and value:  # schema_list
            out["anyOf" if key == "oneOf" and "anyOf" not in node else key] = self._convert_list(
                key, value, context, warnings)
        return True

    def _schema_map(
        self, key: str, value: dict[str, Any], context: Context, warnings: list[str]
    ) -> tuple[dict[str, Any], bool]:
        """A map of subschemas, and False when a patternProperties key had to be left out."""
        out: dict[str, Any] = {}
        complete = True
        for name, sub in value.items():
            self._path.append(f"{key}/{name}")
            converted = self._convert(sub, context, warnings)
            self._path.pop()
            if key == "patternProperties":
                translated = ecma_pattern(name)
                if translated is None:
                    warnings.append(f"{self._here()}: patternProperties key {name!r} is not an ECMA-262 "
                                         "regular expression; left out (other properties are no longer checked)")
                    complete = False
                    continue
                name = translated
            out[name] = converted
        return out, complete

    def _pattern(self, value: str, out: dict[str, Any], warnings: list[str]) -> None:
        translated = ecma_pattern(value)
        if translated is None:
            warnings.append(f"{self._here()}: pattern {value!r} is not an ECMA-262 regular expression "
                                 "(u mode); left out")
        else:
            out["pattern"] = translated

    def _here(self) -> str:
        return f"{self.origin} at /{'/'.join(self._path)}" if self._path else self.origin

    def _shape_keywords(self, node: dict[str, Any], out: dict[str, Any], context: Context, warnings: list[str]) -> None:
        """The keywords whose OpenAPI form differs from JSON Schema 2020-12 (only those present are looked at:
        this runs for every schema object of the document)."""
        present = _SHAPE_KEYS.intersection(node)
        if present:
            self._value_keywords(node, present, out, warnings)
            self._structure_keywords(node, present, out, context, warnings)
            if "discriminator" in present:
                _note_discriminator(node["discriminator"], out)

    def _value_keywords(
        self, node: dict[str, Any], present: frozenset[str], out: dict[str, Any], warnings: list[str]
    ) -> None:
        """What a value may be: type, enum, exclusive bounds, multipleOf, examples, dependentRequired."""
        if "type" in present:
            kind = _type(node["type"])
            if kind is None:
                warnings.append(f"{self._here()}: schema type {node['type']!r} is not a JSON Schema type; left out")
            elif kind == "file":  # Swagger 2.0 file: bytes, sent base64-encoded
                out["type"] = "string"
                out.setdefault("contentEncoding", "base64")
            else:
                out["type"] = kind
        if "enum" in present:
            enum = node["enum"]
            if isinstance(enum, list) and enum:
                try:
                    distinct = len(set(enum)) == len(enum)  # Python's equality is coarser than JSON's
                except TypeError:  # a list or object value
                    distinct = False
                out["enum"] = enum if distinct else _unique(enum)
        for key, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if key in present:
                value = node[key]
                if value is True and bound in out:  # OpenAPI 3.0 / draft 4: a flag on minimum/maximum
                    out[key] = out.pop(bound)
                elif _is_number(value):
                    out[key] = value
        if "multipleOf" in present:
            multiple = node["multipleOf"]
            if _is_number(multiple) and multiple > 0:
                out["multipleOf"] = multiple
        if "examples" in present and isinstance(node["examples"], list):
            out["examples"] = node["examples"]
        elif "example" in present:
            out["examples"] = [node["example"]]
        if "dependentRequired" in present:
            dependent = node["dependentRequired"]
            if isinstance(dependent, dict) and all(_is_names(v) for v in dependent.values()):
                out["dependentRequired"] = {k: list(dict.fromkeys(v)) for k, v in dependent.items()}

    def _structure_keywords(
        self, node: dict[str, Any], present: frozenset[str], out: dict[str, Any], context: Context,
        warnings: list[str],
    ) -> None:
        """What a value holds: items (draft 4 tuples become prefixItems), properties and required, minus the
        properties hidden in this context (readOnly in requests, writeOnly in responses)."""
        path = self._path
        if "items" in present:
            items = node["items"]
            if isinstance(items, dict | bool):
                path.append("items")
                out["items"] = self._convert(items, context, warnings)
                path.pop()
            elif isinstance(items, list):  # draft 4 tuple form
                out["prefixItems"] = self._convert_list("prefixItems", items, context, warnings)
        hidden: list[str] = []
        if "properties" in present and isinstance(node["properties"], dict):
            converted: dict[str, Any] = {}
            for name, sub in node["properties"].items():
                if self._is_hidden(sub, context):
                    hidden.append(name)
                else:
                    path.append(f"properties/{name}")
                    converted[name] = self._convert(sub, context, warnings)
                    path.pop()
            out["properties"] = converted
        if "required" in present and _is_names(node["required"]):
            names = [name for name in dict.fromkeys(node["required"]) if name not in hidden]
            if names:
                out["required"] = names
        if hidden:
            self._hidden[id(out)] = (out, tuple(hidden))

    def _convert_list(self, key: str, schemas: list[Any], context: Context, warnings: list[str]) -> list[Any]:
        converted = []
        for index, sub in enumerate(schemas):
            self._path.append(f"{key}/{index}")
            converted.append(self._convert(sub, context, warnings))
            self._path.pop()
        return converted

    def _is_hidden(self, sub: Any, context: Context) -> bool:
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

    def _reference(self, node: dict[str, Any], ref: str, context: Context, warnings: list[str]) -> Any:
        key = (ref, context)
        found = self._definitions.get(key)
        if found is None:
            self.resolver.resolve(ref, self.where)  # a dangling ref is an error of the operation that uses it
            found = Definition(key, self._def_name(ref))
            self._definitions[key] = found
            self._by_ref[(DEFS_PREFIX + found.name, context)] = found
        result: Any = self._marker(found.name)
        if len(node) > 1:
            result = self._ref_siblings(node, result, context, warnings)
        return result

    def _marker(self, name: str) -> dict[str, str]:
        marker = self._markers.get(name)
        if marker is None:
            marker = self._markers[name] = {"$ref": DEFS_PREFIX + name}
        return marker

    def _convert_definition(self, found: Definition) -> None:
        """Convert a named schema on first need (its own warnings stay with it, for the tools it reaches)."""
        ref, context = found.key
        saved = self.origin, self._path
        self.origin, self._path = f"schema {found.name}", []
        self._active.add(found.key)
        inner: list[str] = []
        try:
            found.body = self._convert(self.resolver.resolve(ref, self.where), context, inner)
        finally:
            self._active.discard(found.key)
            self.origin, self._path = saved
        found.warnings = tuple(dict.fromkeys(inner))

    def _ref_siblings(self, node: dict[str, Any], result: Any, context: Context, warnings: list[str]) -> Any:
        """Keywords next to a `$ref` (3.1 allows them; 3.0 specs use them anyway): layered on a copy."""
        extra = {key: value for key, value in node.items() if key not in ("$ref", "nullable")}
        converted = self._convert(extra, context, warnings) if extra else {}
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

    def _merge_all_of(self, out: dict[str, Any], context: Context, warnings: list[str]) -> dict[str, Any]:
        """allOf of plain object schemas becomes one object schema (clients and flattening need it);
        a named member is merged from its converted body unless it is being converted (a cycle). Its
        title and description stay its own: Graph's `user` is `allOf: [directoryObject, {...}]`, and
        every entity would otherwise be titled `entity` and described by the base's variant list."""
        if out.get("type", "object") != "object":
            return out
        own = {key: value for key, value in out.items() if key != "allOf"}
        if not set(own) <= _MERGEABLE or own.get("additionalProperties", True) is not True:
            return out
        parts = [own]
        named: set[int] = set()
        for member in out["allOf"]:
            if isinstance(member, dict) and set(member) == {"$ref"}:
                resolved = self.definition(member, context, warnings)
                if resolved is member:
                    return out
                member = resolved
                named.add(len(parts))
            parts.append(member)
        properties: dict[str, Any] = {}
        required: list[str] = []
        hidden: set[str] = set(self.hidden_properties(out))
        annotations: dict[str, Any] = {}
        for index, part in enumerate(parts):
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
            for key in ("deprecated",) if index in named else ("title", "description", "deprecated"):
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


def _note_discriminator(discriminator: Any, out: dict[str, Any]) -> None:
    """Say in the description which property selects the variant (JSON Schema has no discriminator)."""
    if not isinstance(discriminator, dict) or not isinstance(discriminator.get("propertyName"), str):
        return
    note = f"The `{discriminator['propertyName']}` property selects the variant"
    mapping = discriminator.get("mapping")
    if isinstance(mapping, dict) and mapping:
        values = [str(value) for value in mapping]
        shown = ", ".join(values[:MAX_LISTED_VARIANTS])
        if len(values) > MAX_LISTED_VARIANTS:
            shown += f" and {len(values) - MAX_LISTED_VARIANTS} more"
        note += f" ({shown})"
    out["description"] = f"{out['description']}\n\n{note}." if out.get("description") else f"{note}."


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


def _unique(values: list[Any]) -> list[Any]:
    """`values` without repeats, in order (JSON equality: 1 and true differ; Graph enums list hundreds)."""
    seen: set[tuple[type, Any]] = set()
    unique: list[Any] = []
    for item in values:
        try:
            key = (type(item), item)
            if key in seen:
                continue
            seen.add(key)
        except TypeError:  # a list or object value
            if item in unique:
                continue
        unique.append(item)
    return unique


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
