"""Tool schemas within `max_schema_bytes`: shared named schemas as `$defs`, single uses inlined, and beyond
the budget permissive collapses that keep every argument, the first levels' types and required properties,
warn naming the operation, and never reject a call the full schema accepts (property-based, hypothesis)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_support import spec
from witness import Unsatisfiable, has_empty_cycle, witness

from castproxy.cli import main
from castproxy.openapi.budget import DEFAULT_MAX_SCHEMA_BYTES, size_of
from castproxy.openapi.compiler import compile_spec
from castproxy.openapi.model import ToolDefinition
from castproxy.openapi.patterns import EcmaValidator

OK = {"200": {"description": "ok"}}
HUGE = 2**30  # a budget nothing reaches: the full schemas
PROSE = "Words a model would read about this field, long enough to weigh on the budget. " * 4


def body_op(operation_id: str, schema: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"operationId": operation_id, "responses": OK,
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}, **fields}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def only(document: dict[str, Any], **kwargs: Any) -> ToolDefinition:
    tools = compile_spec(document, **kwargs).tools
    assert len(tools) == 1
    return tools[0]


def wide(prefix: str, count: int, **extra: Any) -> dict[str, Any]:
    """An object schema with `count` described string properties (about 380 bytes each)."""
    return {"type": "object", "properties": {
        f"{prefix}{i}": {"type": "string", "description": f"{prefix}{i}: {PROSE}"} for i in range(count)}, **extra}


# -- $defs and inlining -------------------------------------------------------------------------


def test_named_schema_used_twice_is_one_def_and_used_once_is_inlined() -> None:
    address = {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string"}, "street": {"type": "string"}, "zip": {"type": "string"}}}
    order = {"type": "object", "properties": {"shipTo": ref("Address"), "billTo": ref("Address"),
                                              "note": ref("Note")}}
    tool = only(spec({"/orders": {"post": body_op("createOrder", ref("Order"))}},
                     components={"schemas": {"Order": order, "Address": address, "Note": {"type": "object",
                                 "properties": {"text": {"type": "string"}, "lang": {"type": "string"}}}}}))
    schema = tool.input_schema
    assert schema["properties"]["shipTo"] == {"$ref": "#/$defs/Address"} == schema["properties"]["billTo"]
    assert schema["$defs"] == {"Address": address}
    assert schema["properties"]["note"]["properties"]["text"] == {"type": "string"}  # used once: in place
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"shipTo": {"city": "Oslo"}, "billTo": {"city": "Bergen", "zip": "5003"}})
    assert not validator.is_valid({"shipTo": {"street": "no city"}})


def test_tiny_named_schema_used_many_times_is_inlined_when_that_is_shorter() -> None:
    order = {"type": "object", "properties": {name: ref("Id") for name in ("a", "b", "c", "d")}}
    tool = only(spec({"/o": {"post": body_op("o", ref("Order"))}},
                     components={"schemas": {"Order": order, "Id": {"type": "string"}}}))
    assert "$defs" not in tool.input_schema
    assert tool.input_schema["properties"]["a"] == {"type": "string"}


def test_graph_sized_closure_stays_within_budget_where_inlining_made_megabytes() -> None:
    """Forty entity types that all point at each other, like Microsoft Graph's navigation properties."""
    schemas = {f"E{i}": {**wide(f"e{i}_", 6), "properties": {
        **wide(f"e{i}_", 6)["properties"], **{f"to{j}": ref(f"E{j}") for j in range(40) if j != i}}}
        for i in range(40)}
    document = spec({"/e": {"post": body_op("createE", ref("E0"))}}, components={"schemas": schemas})
    tool = only(document)
    assert size_of(tool.input_schema) <= DEFAULT_MAX_SCHEMA_BYTES
    assert set(tool.input_schema["properties"]) >= {"e0_0", "to1", "to39"}  # every top-level argument
    full = only(document, max_schema_bytes=HUGE)
    assert size_of(full.input_schema) > 4 * DEFAULT_MAX_SCHEMA_BYTES  # the budget did have to act
    warning = next(w for w in tool.warnings if "collapsed" in w)
    assert warning.startswith("createE (POST /e): input schema is over the 32 KiB budget (max_schema_bytes)")
    assert "schema E" in warning


# -- collapsing ---------------------------------------------------------------------------------


def test_collapse_keeps_arguments_required_properties_and_first_level_types() -> None:
    team = {**wide("t", 120), "required": ["displayName", "kind"]}
    team["properties"] |= {"displayName": {"type": "string"}, "kind": {"type": "string", "enum": ["a", "b"]},
                           "owner": ref("User")}
    user = {**wide("u", 40), "required": ["id"], "properties": {**wide("u", 40)["properties"],
                                                                "id": {"type": "string"}}}
    document = spec({"/teams/{team}": {"put": body_op("putTeam", {"type": "object", "required": ["team"],
                                                                  "properties": {"team": ref("Team"),
                                                                                 "user": ref("User")}},
                                                      parameters=[{"name": "team", "in": "path", "required": True,
                                                                   "schema": {"type": "string"}},
                                                                  {"name": "verbose", "in": "query",
                                                                   "schema": {"type": "boolean"}}])}},
                    components={"schemas": {"Team": team, "User": user}})
    tool = only(document, max_schema_bytes=4096)
    schema = tool.input_schema
    assert size_of(schema) <= 4096
    assert set(schema["properties"]) == {"team", "verbose", "body"}  # path `team` claimed the name first
    assert schema["required"] == ["team", "body"]
    body = Draft202012Validator(schema)
    assert body.is_valid({"team": "t1", "body": {"team": {"displayName": "x", "kind": "a"}}})
    assert not body.is_valid({"team": "t1", "body": {"team": {"displayName": "x"}}})  # required `kind` kept
    assert not body.is_valid({"team": "t1", "body": {"team": "not an object"}})  # first levels' types kept
    assert not body.is_valid({"team": "t1"})
    text = json.dumps(schema)
    assert "collapsed: too large" in text
    expected = "putTeam (PUT /teams/{team}): input schema is over the 4 KiB budget"
    assert any(warning.startswith(expected) for warning in tool.warnings)


def test_big_flattened_body_keeps_every_argument_typed() -> None:
    """Graph's PATCH /users/{id}: one object with hundreds of described properties becomes arguments."""
    document = spec({"/u": {"patch": body_op("updateUser", wide("p", 300))}})
    tool = only(document)
    schema = tool.input_schema
    assert size_of(schema) <= DEFAULT_MAX_SCHEMA_BYTES
    assert len(schema["properties"]) == 300
    assert all(prop.get("type") == "string" for prop in schema["properties"].values())
    assert not Draft202012Validator(schema).is_valid({"p1": 5})


def test_named_schemas_under_not_are_never_collapsed() -> None:
    """Collapsing under `not` would make it reject more; such schemas are included whole or not at all."""
    forbidden = {"type": "object", "required": ["secret"], "properties": {"secret": {"type": "string"}}}
    body = {"type": "object", "properties": {"filler": ref("Filler"), "rest": {"not": ref("Forbidden")}}}
    document = spec({"/x": {"post": body_op("x", body)}},
                    components={"schemas": {"Filler": wide("f", 30), "Forbidden": forbidden}})
    tool = only(document, max_schema_bytes=2048)
    assert size_of(tool.input_schema) <= 2048
    validator = Draft202012Validator(tool.input_schema)
    assert validator.is_valid({"rest": {"public": 1}})
    assert not validator.is_valid({"rest": {"secret": "s"}})


def test_output_schemas_obey_the_same_budget() -> None:
    response = {"200": {"description": "ok", "content": {"application/json": {"schema": ref("Big")}}}}
    document = spec({"/big": {"get": {"operationId": "getBig", "responses": response}}},
                    components={"schemas": {"Big": {**wide("b", 50), "properties": {
                        **wide("b", 50)["properties"], "child": ref("Child")}}, "Child": wide("c", 60)}})
    tool = only(document, output_schema=True, max_schema_bytes=8192)
    assert tool.output_schema is not None and tool.output_schema["type"] == "object"
    assert size_of(tool.output_schema) <= 8192
    assert any("output schema is over the 8 KiB budget" in w for w in tool.warnings)
    assert EcmaValidator(tool.output_schema).is_valid({"b1": "x", "child": {"c1": "y"}})


def test_compile_is_deterministic_and_sized_per_budget() -> None:
    schemas = {f"E{i}": {**wide(f"e{i}_", 8), "properties": {**wide(f"e{i}_", 8)["properties"],
                                                             "next": ref(f"E{(i + 1) % 12}")}} for i in range(12)}
    paths = {f"/e{i}": {"post": body_op(f"createE{i}", ref(f"E{i}"))} for i in range(12)}
    document = spec(paths, components={"schemas": schemas})
    first = [json.dumps(tool.input_schema) for tool in compile_spec(document, max_schema_bytes=4000).tools]
    again = [json.dumps(tool.input_schema) for tool in compile_spec(json.loads(json.dumps(document)),
                                                                     max_schema_bytes=4000).tools]
    assert first == again
    bigger = compile_spec(document, max_schema_bytes=16000).tools
    assert all(len(text) <= 4000 for text in first)
    assert max(size_of(tool.input_schema) for tool in bigger) > 4000  # the budget is per call, not fixed


# -- the workspace setting and the CLI option ---------------------------------------------------


def test_workspace_max_schema_bytes_and_tools_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    document = spec({"/u": {"patch": body_op("updateUser", {**wide("p", 20), "properties": {
        **wide("p", 20)["properties"], "manager": ref("User")}})}},
        servers=[{"url": "https://api.example.com"}], components={"schemas": {"User": wide("q", 30)}})
    (tmp_path / "spec.json").write_text(json.dumps(document))
    (tmp_path / "cast.yaml").write_text("version: 1\nworkspaces:\n  small:\n    openapi: spec.json\n"
                                        "    max_schema_bytes: 4KiB\n    tools: [updateUser]\n"
                                        "  default:\n    openapi: spec.json\n    tools: [updateUser]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CASTPROXY_CONFIG", raising=False)
    sizes = {}
    for workspace in ("small", "default"):
        assert main(["tools", workspace, "--json"]) == 0
        payload = json.loads(capsys.readouterr().out)
        sizes[workspace] = size_of(payload["tools"][0]["input_schema"])
        assert any("collapsed" in w for w in payload["warnings"]) == (workspace == "small")
    assert sizes["small"] <= 4096 < sizes["default"]
    assert main(["validate", "--offline"]) == 0  # warnings do not fail validate; they are shown
    shown = capsys.readouterr()
    assert "updateUser (PATCH /u): input schema is over the 4 KiB budget (max_schema_bytes)" in shown.out + shown.err
    assert main(["tools", "--spec", "spec.json", "--json", "--max-schema-bytes", "4KiB"]) == 0
    assert size_of(json.loads(capsys.readouterr().out)["tools"][0]["input_schema"]) == sizes["small"]
    with pytest.raises(SystemExit) as exited:
        main(["tools", "--spec", "spec.json", "--max-schema-bytes", "12"])
    assert exited.value.code == 2
    assert "at least 1024 bytes" in capsys.readouterr().err


# -- a collapsed schema never rejects what the full one accepts ---------------------------------

NAMES = [f"S{i}" for i in range(6)]
_LEAVES = st.one_of(
    st.builds(lambda n: {"type": "string", "maxLength": n, "description": PROSE}, st.integers(3, 30)),
    st.builds(lambda low: {"type": "integer", "minimum": low}, st.integers(-5, 5)),
    st.just({"type": "boolean"}),
    st.builds(lambda values: {"enum": values}, st.lists(st.sampled_from(["a", "b", 1, None]), min_size=1,
                                                        max_size=3, unique=True)),
    st.builds(lambda pattern: {"type": "string", "pattern": pattern}, st.sampled_from(["^a", "\\d", "^[\\w-]+$"])),
    st.builds(lambda name: ref(name), st.sampled_from(NAMES)),
)


def _object(fields: dict[str, Any], required: list[str], closed: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": fields, "description": PROSE}
    names = [name for name in required if name in fields]
    if names:
        schema["required"] = names
    if closed:
        schema["additionalProperties"] = False
    return schema


def _composites(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(["id", "name", "kind", "items", "next", "meta"])
    return st.one_of(
        st.builds(_object, st.dictionaries(keys, children, min_size=1, max_size=5), st.lists(keys, max_size=3),
                  st.booleans()),
        st.builds(lambda item, low: {"type": "array", "items": item, "minItems": low}, children, st.integers(0, 1)),
        st.builds(lambda branches: {"oneOf": branches}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda branches: {"anyOf": branches}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda a, b: {"allOf": [a, b]}, children, children),
        st.builds(lambda inner, then: {"not": inner, "if": inner, "then": then}, children, children),
        st.builds(lambda inner: {**inner, "nullable": True} if isinstance(inner, dict) else inner, children),
    )


SCHEMAS = st.recursive(_LEAVES, _composites, max_leaves=12)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@given(named=st.fixed_dictionaries({name: SCHEMAS for name in NAMES}), body=SCHEMAS, seed=st.integers(0, 2**32))
def test_collapsed_schema_accepts_every_call_the_full_one_accepts(named: dict[str, Any], body: Any,
                                                                 seed: int) -> None:
    document = spec({"/x": {"post": body_op("x", body), "put": body_op("y", ref("S0"))}},
                    components={"schemas": named})
    small = compile_spec(document, max_schema_bytes=1024).tools
    full = compile_spec(document, max_schema_bytes=HUGE).tools
    rng = random.Random(seed)
    checked = 0
    for collapsed, whole in zip(small, full, strict=True):
        assert size_of(collapsed.input_schema) <= 1024
        if has_empty_cycle(whole.input_schema):  # `S0: {anyOf: [S0]}`: no validator can evaluate it
            continue
        strict, loose = EcmaValidator(whole.input_schema), EcmaValidator(collapsed.input_schema)
        for _ in range(8):
            try:
                arguments = witness(whole.input_schema, rng)
                accepted = strict.is_valid(arguments)
            except Unsatisfiable:
                continue
            if accepted:
                assert loose.is_valid(arguments), (arguments, collapsed.input_schema)
                checked += any("collapsed" in warning for warning in collapsed.warnings)
    # Only examples where a collapsed schema met a call its full schema accepts count (so it can fail).
    assume(checked > 0)
