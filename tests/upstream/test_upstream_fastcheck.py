"""The validator's shortcut never accepts what jsonschema rejects (checked value by value against jsonschema)."""

from __future__ import annotations

import itertools
import random

import pytest
from jsonschema import Draft202012Validator

from castproxy.upstream.fastcheck import compile_check

SCHEMAS = [
    {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "minimum": 1, "exclusiveMaximum": 1000},
            "q": {"type": "string", "minLength": 1, "maxLength": 5, "pattern": "^[a-z]+$"},
            "status": {"enum": ["open", "closed", 1, True, None]},
            "ratio": {"type": ["number", "null"], "maximum": 1.5},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
            "flag": {"type": "boolean", "const": True},
            "nested": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
        },
        "required": ["id"],
        "additionalProperties": False,
    },
    {"type": "object", "properties": {"x": {"type": "number"}}, "additionalProperties": {"type": "string"}},
    {"type": "object", "properties": {"x": True, "y": False}},
]

VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    1.5,
    999,
    1000,
    2.5,
    "",
    "a",
    "abc",
    "abcdef",
    "ABC",
    "open",
    "closed",
    [],
    ["a"],
    ["a", "b", "c"],
    [1],
    {},
    {"a": 1},
    {"a": "1"},
    {"b": 1},
]
KEYS = ["id", "q", "status", "ratio", "tags", "flag", "nested", "x", "y", "other"]


def _instances(seed: int, count: int):
    rng = random.Random(seed)
    yield from ({}, [], None, "x", 1)
    for _ in range(count):
        keys = rng.sample(KEYS, rng.randint(0, 4))
        yield {key: rng.choice(VALUES) for key in keys}


@pytest.mark.parametrize("schema", SCHEMAS)
def test_shortcut_agrees_with_jsonschema(schema):
    check = compile_check(schema)
    assert check is not None
    validator = Draft202012Validator(schema)
    accepted = 0
    for instance in itertools.chain(_instances(1, 4000), ({"id": 5, "status": v} for v in VALUES)):
        if check(instance):
            accepted += 1
            assert validator.is_valid(instance), instance
        elif validator.is_valid(instance) and "status" not in instance:
            # Only the enum's cross-type cases may be left to jsonschema; everything else is decided here.
            raise AssertionError(f"shortcut not sure about a plainly valid instance: {instance}")
    assert accepted > 10


def test_typical_valid_arguments_take_the_shortcut():
    check = compile_check(SCHEMAS[0])
    for instance in (
        {"id": 5},
        {"id": 1.0, "q": "abc", "tags": ["a"], "flag": True, "nested": {"a": 1}, "ratio": None, "status": "open"},
        {"id": 999, "ratio": 1.5, "tags": []},
    ):
        assert check(instance), instance


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {}}},
        {"anyOf": [{"type": "string"}]},
        {"type": "object", "patternProperties": {"^x": {}}},
        {"type": "number", "multipleOf": 2},
        {"type": "array", "uniqueItems": True},
        {"type": "strange"},
        {"type": "string", "pattern": "("},
    ],
)
def test_other_keywords_always_use_jsonschema(schema):
    assert compile_check(schema) is None
