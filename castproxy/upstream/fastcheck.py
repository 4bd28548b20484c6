"""A quick "certainly valid" check for the common, simple input schemas (the hot-path shortcut).

`compile_check` turns a schema of a few keywords into a predicate that answers True only where jsonschema
would; None (always use jsonschema) for any other keyword.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from castproxy.openapi.patterns import compiled as ecma_regex

__all__ = ["compile_check"]

Check = Callable[[Any], bool]

# Keywords that only annotate: jsonschema's draft 2020-12 validator asserts nothing for them.
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$comment",
        "title",
        "description",
        "default",
        "examples",
        "format",
        "deprecated",
        "readOnly",
        "writeOnly",
        "contentMediaType",
        "contentEncoding",
    }
)
_CHECKED = frozenset(
    {
        "type",
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
        "items",
        "minItems",
        "maxItems",
        "properties",
        "required",
        "additionalProperties",
    }
)


class _Unsupported(Exception):
    """A keyword this module does not check: the schema needs jsonschema."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_TYPES: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer()),
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _same(one: Any, two: Any) -> bool:
    """Equality where jsonschema's is certain to agree; False (not sure) for anything else."""
    if isinstance(one, bool) or isinstance(two, bool):
        return one is two
    if _is_number(one) and _is_number(two):
        return bool(one == two)
    if isinstance(one, str) and isinstance(two, str):
        return one == two
    return one is None and two is None


def compile_check(schema: Any) -> Check | None:
    """A predicate answering True only for instances jsonschema accepts; None for unsupported schemas."""
    try:
        return _compile(schema)
    except (_Unsupported, re.error, KeyError, TypeError, ValueError):
        return None


def _compile(schema: Any) -> Check:
    if schema is True or schema == {}:
        return lambda value: True
    if schema is False:
        return lambda value: False
    if not isinstance(schema, dict):
        raise _Unsupported
    for key in schema:
        if key not in _CHECKED and key not in _ANNOTATIONS and not key.startswith("x-"):
            raise _Unsupported
    parts = (_value_checks, _bound_checks, _string_checks, _array_checks, _object_checks)
    return _all_of([check for part in parts for check in part(schema)])


def _value_checks(schema: dict[str, Any]) -> list[Check]:
    """`type`, `enum` and `const`."""
    checks: list[Check] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        tests = [_TYPES[name] for name in names]  # KeyError: unknown type name
        checks.append(tests[0] if len(tests) == 1 else _any_of(tests))
    if "enum" in schema:
        choices = list(schema["enum"])
        checks.append(lambda value: any(_same(value, choice) for choice in choices))
    if "const" in schema:
        const = schema["const"]
        checks.append(lambda value: _same(value, const))
    return checks


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "minimum": operator.ge,
    "maximum": operator.le,
    "exclusiveMinimum": operator.gt,
    "exclusiveMaximum": operator.lt,
}


def _bound_checks(schema: dict[str, Any]) -> list[Check]:
    """`minimum`, `maximum` and their exclusive forms: they constrain numbers only."""
    bounds = [(compare, schema[kind]) for kind, compare in _COMPARISONS.items() if kind in schema]
    if not all(_is_number(bound) for _, bound in bounds):
        raise _Unsupported
    return [_within(compare, bound) for compare, bound in bounds]


def _within(compare: Callable[[Any, Any], bool], bound: Any) -> Check:
    return lambda value: not _is_number(value) or compare(value, bound)


def _string_checks(schema: dict[str, Any]) -> list[Check]:
    """`minLength`, `maxLength` and `pattern`: they constrain strings only."""
    checks: list[Check] = []
    min_length, max_length = schema.get("minLength"), schema.get("maxLength")
    if min_length is not None or max_length is not None:
        low, high = int(min_length or 0), max_length
        checks.append(lambda v: not isinstance(v, str) or (len(v) >= low and (high is None or len(v) <= high)))
    if "pattern" in schema:
        regex = ecma_regex(schema["pattern"])  # ECMA-262, as jsonschema is told to match (patterns.py)
        if regex is None:
            raise _Unsupported
        find = regex.find
        checks.append(lambda value: not isinstance(value, str) or find(value) is not None)
    return checks


def _array_checks(schema: dict[str, Any]) -> list[Check]:
    """`items`, `minItems` and `maxItems`: they constrain arrays only."""
    checks: list[Check] = []
    if "items" in schema:
        item_check = _compile(schema["items"])
        checks.append(lambda value: not isinstance(value, list) or all(map(item_check, value)))
    min_items, max_items = schema.get("minItems"), schema.get("maxItems")
    if min_items is not None or max_items is not None:
        low, high = int(min_items or 0), max_items
        checks.append(lambda v: not isinstance(v, list) or (len(v) >= low and (high is None or len(v) <= high)))
    return checks


def _object_checks(schema: dict[str, Any]) -> list[Check]:
    """`properties`, `required` and `additionalProperties`: they constrain objects only."""
    properties = {name: _compile(sub) for name, sub in (schema.get("properties") or {}).items()}
    required = list(schema.get("required") or [])
    additional = schema.get("additionalProperties", True)
    extra_check = None if additional is True else _compile(additional)
    if not (properties or required or extra_check is not None):
        return []

    def check_object(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        for name in required:
            if name not in value:
                return False
        for name, item in value.items():
            sub = properties.get(name)
            if sub is not None:
                if not sub(item):
                    return False
            elif extra_check is not None and not extra_check(item):
                return False
        return True

    return [check_object]


def _any_of(tests: list[Check]) -> Check:
    def check(value: Any) -> bool:
        for test in tests:  # noqa: SIM110 - a loop costs less than any() over a generator
            if test(value):
                return True
        return False

    return check


def _all_of(checks: list[Check]) -> Check:
    # Plain loops and closures: generator expressions cost more than the checks themselves.
    if not checks:
        return lambda value: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda value: first(value) and second(value)

    def check(value: Any) -> bool:
        for one in checks:  # noqa: SIM110 - a loop costs less than all() over a generator
            if not one(value):
                return False
        return True

    return check
