"""A tool whose input schema keeps named schemas under `$defs` (shared or recursive) and collapses others:
arguments are checked through the `$ref`s, and the request is built from the operation, not from the
schema, so the upstream receives the body exactly as given."""

from __future__ import annotations

import json
from typing import Any

from castproxy.openapi.compiler import compile_spec
from castproxy.upstream.arguments import ArgumentValidator
from castproxy.upstream.forwarder import Forwarder
from castproxy.upstream.request import build_request

PROSE = "A field described at length, as big specs do, so that the budget has to act. " * 6


def _document() -> dict[str, Any]:
    def ref(name: str) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{name}"}

    folder = {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "pattern": "^[\\w\\- ]+$"}, "children": {"type": "array", "items": ref("Folder")},
        "owner": ref("Person"), "editor": ref("Person"), "audit": ref("Audit")}}
    person = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer", "minimum": 1},
                                                                  "mail": {"type": "string"}}}
    audit = {"type": "object", "properties": {f"f{i}": {"type": "string", "description": PROSE} for i in range(30)}}
    return {
        "openapi": "3.0.3", "info": {"title": "t", "version": "1"},
        "paths": {"/drives/{drive}/folders": {"post": {
            "operationId": "createFolder",
            "parameters": [{"name": "drive", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref("Folder")}}},
            "responses": {"201": {"description": "created"}},
        }}},
        "components": {"schemas": {"Folder": folder, "Person": person, "Audit": audit}},
    }


async def test_defs_body_validates_and_is_sent_as_given(upstream: Any, forwarder: Forwarder) -> None:
    tool = compile_spec(_document(), max_schema_bytes=4096).tools[0]
    schema = tool.input_schema
    assert set(schema["$defs"]) >= {"Folder", "Person"}  # recursive, and used twice
    assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Folder"}
    assert any("collapsed" in warning and "schema Audit" in warning for warning in tool.warnings)
    validator = ArgumentValidator(schema)

    arguments = {"drive": "d1", "name": "Reports 2024", "owner": {"id": 7, "mail": "a@example.com"},
                 "children": [{"name": "Q1", "editor": {"id": 8}, "children": [{"name": "Jan"}]}],
                 "audit": {"f1": "kept", "anything": ["the collapsed part accepts it"]}}
    assert validator.errors(arguments) == []
    assert validator.errors({**arguments, "children": [{"name": "Q1", "owner": {"id": 0}}]}) == [
        "argument 'children[0].owner.id': 0 is less than the minimum of 1"]
    assert validator.errors({**arguments, "children": [{"editor": {"id": 2}}]}) == [
        "missing required argument 'children[0].name'"]
    assert validator.errors({**arguments, "name": "no/slashes"}) == [
        "argument 'name': 'no/slashes' does not match the pattern '^[\\\\w\\\\- ]+$'"]

    request = build_request(tool, arguments, base_url=upstream.url + "/v1")
    outcome = await forwarder.send(request, timeout=5, max_bytes=1 << 20)
    assert outcome.status == 200
    received = upstream.last
    assert (received.method, received.path) == ("POST", "/v1/drives/d1/folders")
    assert received.header("content-type")[0].startswith("application/json")
    body = {key: value for key, value in arguments.items() if key != "drive"}
    assert json.loads(received.body) == body
    assert json.loads(received.body)["children"][0]["children"] == [{"name": "Jan"}]
