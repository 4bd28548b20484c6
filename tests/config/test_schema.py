"""The published JSON Schema: generated from the model, committed, and in agreement with the loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from castproxy.config.schema import SCHEMA_DIALECT, config_schema, schema_text

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schemas" / "cast.schema.json"
EXAMPLE = ROOT / "cast.yaml.example"


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def _errors(document: Any) -> list[str]:
    return sorted(error.message for error in _validator().iter_errors(document))


def test_committed_schema_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "schemas/cast.schema.json is stale: run `castproxy schema > schemas/cast.schema.json`"
    )


def test_schema_is_a_valid_2020_12_schema_with_an_id_and_docs() -> None:
    schema = config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == SCHEMA_DIALECT
    assert schema["$id"]
    assert schema["title"] and schema["description"]
    for name, definition in schema["$defs"].items():
        assert definition.get("description"), f"{name} has no description"
        for field, prop in definition.get("properties", {}).items():
            assert prop.get("description"), f"{name}.{field} has no description"


def test_example_carries_the_modeline_and_validates() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=./schemas/cast.schema.json\n")
    assert _errors(YAML(typ="safe").load(text)) == []


MINIMAL: dict[str, Any] = {"version": 1, "workspaces": {"api": {"openapi": "./s.json", "tools": ["x"]}}}


def _with(**changes: Any) -> dict[str, Any]:
    document = json.loads(json.dumps(MINIMAL))
    workspace = document["workspaces"]["api"]
    for key, value in changes.items():
        if key in ("server", "store"):
            document[key] = value
        else:
            workspace[key] = value
    return document


@pytest.mark.parametrize(
    "document",
    [
        MINIMAL,
        _with(server={"port": "${env:PORT}", "secret_key": "${env:KEY}"}),
        _with(base_url="${env:UPSTREAM_URL}", timeout="500ms", max_response_bytes="1MiB"),
        _with(auth={"type": "bearer", "token": "${env:T}"}, inbound={"api_keys": ["${env:K}"]}),
        _with(tools=["a", {"operation": "b", "name": "b_renamed", "description": "B."}]),
        _with(auth={"type": "oauth2", "pkce": "${env:PKCE}", "scopes": ["read"]}),
    ],
)
def test_schema_accepts_what_the_loader_accepts(document: dict[str, Any]) -> None:
    assert _errors(document) == []


@pytest.mark.parametrize(
    "document",
    [
        {**MINIMAL, "servers": {}},
        {**MINIMAL, "version": 2},
        {"version": 1, "workspaces": {"My API": MINIMAL["workspaces"]["api"]}},
        _with(tools={"x": {}}),
        _with(tools=[]),
        _with(auth={"type": "oauth"}),
        _with(auth={"type": "oauth2", "scopez": ["read"]}),
        _with(auth={"type": "oauth2", "pkce": "S256"}),
        _with(base_url="ftp://example.com"),
        _with(auth={"type": "headers", "headers": {"X Bad": "v"}}),
        _with(server={"port": "eighty"}),
    ],
)
def test_schema_rejects_what_the_loader_rejects(document: dict[str, Any]) -> None:
    assert _errors(document) != []
