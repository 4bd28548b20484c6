"""Comparing two versions of a tool's input or output schema: what changed, where, and whether it breaks."""

from __future__ import annotations

from typing import Any

import pytest

from castproxy.gitops.schemas import SchemaChange, compare_schemas


def obj(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, **extra}
    if required:
        schema["required"] = list(required)
    return schema


def found(old: Any, new: Any, direction: str = "input") -> list[tuple[str, str, bool]]:
    return [(c.path, c.kind, c.breaking) for c in compare_schemas(old, new, direction)]  # type: ignore[arg-type]


def test_identical_schemas_have_no_changes() -> None:
    schema = obj({"a": {"type": "string"}}, ("a",))
    assert compare_schemas(schema, dict(schema), "input") == []


@pytest.mark.parametrize(("old", "new", "expected"), [
    (obj({}), obj({"q": {"type": "string"}}), [("q", "argument-added", False)]),
    (obj({}), obj({"q": {"type": "string"}}, ("q",)), [("q", "argument-added", True)]),
    (obj({"q": {"type": "string"}}), obj({}), [("q", "argument-removed", True)]),
    (obj({"q": {"type": "string"}}), obj({"q": {"type": "string"}}, ("q",)), [("q", "argument-required", True)]),
    (obj({"q": {"type": "string"}}, ("q",)), obj({"q": {"type": "string"}}), [("q", "argument-optional", False)]),
    (obj({"n": {"type": "number"}}), obj({"n": {"type": "integer"}}), [("n", "type-narrowed", True)]),
    (obj({"n": {"type": "integer"}}), obj({"n": {"type": "number"}}), [("n", "type-widened", False)]),
    (obj({"n": {"type": "string"}}), obj({"n": {"type": ["string", "null"]}}), [("n", "type-widened", False)]),
    (obj({"n": {"type": "string"}}), obj({"n": {"type": "boolean"}}), [("n", "type-changed", True)]),
    (obj({"n": {}}), obj({"n": {"type": "string"}}), [("n", "type-narrowed", True)]),
    (obj({"s": {"enum": ["a", "b"]}}), obj({"s": {"enum": ["a"]}}), [("s", "enum-values-removed", True)]),
    (obj({"s": {"enum": ["a"]}}), obj({"s": {"enum": ["a", "b"]}}), [("s", "enum-values-added", False)]),
    (obj({"s": {"type": "string"}}), obj({"s": {"type": "string", "enum": ["a"]}}), [("s", "enum-restricted", True)]),
    (obj({"s": {"type": "string", "enum": ["a"]}}), obj({"s": {"type": "string"}}), [("s", "enum-lifted", False)]),
    (obj({"n": {"type": "integer", "maximum": 10}}), obj({"n": {"type": "integer", "maximum": 5}}),
     [("n", "constraint-narrowed", True)]),
    (obj({"n": {"type": "integer", "minimum": 1}}), obj({"n": {"type": "integer", "minimum": 0}}),
     [("n", "constraint-widened", False)]),
    (obj({"n": {"type": "string"}}), obj({"n": {"type": "string", "pattern": "^a"}}),
     [("n", "constraint-narrowed", True)]),
    (obj({"d": {"type": "string", "description": "old"}}), obj({"d": {"type": "string", "description": "new"}}),
     [("d", "description-changed", False)]),
    (obj({}), obj({}, additionalProperties=False), [("", "constraint-narrowed", True)]),
])
def test_input_changes_and_their_class(old: Any, new: Any, expected: list[tuple[str, str, bool]]) -> None:
    assert found(old, new) == expected


def test_nested_body_properties_and_array_items_are_compared() -> None:
    old = obj({"body": obj({"address": obj({"city": {"type": "string"}}), "tags": {"type": "array",
                                                                               "items": {"type": "string"}}})})
    new = obj({"body": obj({"address": obj({"city": {"type": "string"}, "zip": {"type": "string"}}, ("zip",)),
                            "tags": {"type": "array", "items": {"type": "string", "enum": ["x"]}}})})
    assert found(old, new) == [("body.address.zip", "argument-added", True), ("body.tags[]", "enum-restricted", True)]


def test_refs_are_resolved_so_moving_a_schema_into_defs_is_no_change() -> None:
    inline = obj({"owner": obj({"email": {"type": "string"}})})
    with_defs = {**obj({"owner": {"$ref": "#/$defs/Owner"}}), "$defs": {"Owner": obj({"email": {"type": "string"}})}}
    assert compare_schemas(inline, with_defs, "input") == []
    changed = {**obj({"owner": {"$ref": "#/$defs/Owner"}}),
               "$defs": {"Owner": obj({"email": {"type": "string"}}, ("email",))}}
    assert found(inline, changed) == [("owner.email", "argument-required", True)]


def test_a_ref_with_sibling_keywords_layers_them_on_the_target() -> None:
    old = {**obj({"s": {"$ref": "#/$defs/S", "description": "the status"}}), "$defs": {"S": {"enum": ["a", "b"]}}}
    new = {**obj({"s": {"$ref": "#/$defs/S", "description": "the status"}}), "$defs": {"S": {"enum": ["a"]}}}
    assert found(old, new) == [("s", "enum-values-removed", True)]


def test_recursive_schemas_terminate_and_report_each_place_once() -> None:
    def person(extra: dict[str, Any]) -> dict[str, Any]:
        return {**obj({"who": {"$ref": "#/$defs/Person"}}), "$defs": {"Person": obj(
            {"name": {"type": "string"}, "friend": {"$ref": "#/$defs/Person"}, **extra})}}

    changes = compare_schemas(person({}), person({"age": {"type": "integer"}}), "input")
    assert [(c.path, c.kind) for c in changes] == [("who.age", "argument-added")]


def test_shared_defs_are_reported_where_each_argument_uses_them() -> None:
    def shape(city: dict[str, Any]) -> dict[str, Any]:
        return {**obj({"home": {"$ref": "#/$defs/A"}, "work": {"$ref": "#/$defs/A"}}), "$defs": {"A": obj(
            {"city": city})}}

    assert found(shape({"type": "string"}), shape({"type": "integer"})) == [
        ("home.city", "type-changed", True), ("work.city", "type-changed", True)]


def test_options_of_any_of_are_matched_before_they_are_compared() -> None:
    old = obj({"v": {"anyOf": [{"type": "string"}, {"type": "integer"}]}})
    fewer = obj({"v": {"anyOf": [{"type": "string"}]}})
    edited = obj({"v": {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 1}]}})
    assert found(old, fewer) == [("v", "option-removed", True)]
    assert found(old, edited) == [("v", "constraint-narrowed", True)]


def test_output_direction_flips_what_breaks() -> None:
    old = obj({"id": {"type": "integer"}, "state": {"enum": ["open", "closed"]}}, ("id",))
    new = obj({"id": {"type": "number"}, "state": {"enum": ["open", "closed", "merged"]},
               "extra": {"type": "string"}})
    changes = compare_schemas(old, new, "output")
    assert [(c.path, c.kind, c.breaking) for c in changes] == [
        ("id", "type-widened", True),
        ("id", "output-field-optional", True),
        ("state", "enum-values-added", True),
        ("extra", "output-field-added", False),
    ]
    assert changes[2].message == "output field `state` may now return \"merged\""


def test_messages_name_the_argument_and_the_values() -> None:
    change: SchemaChange = compare_schemas(obj({"s": {"enum": ["a", "b", "c"]}}), obj({"s": {"enum": ["a"]}}),
                                           "input")[0]
    assert change.message == 'argument `s` no longer accepts "b", "c"'
    assert (change.before, change.after) == (["b", "c"], None)
