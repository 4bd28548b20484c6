"""The compiler on small specs: names, arguments, bodies, schemas, annotations, warnings, caching."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_support import NAME_PATTERN, spec

from castproxy.openapi.compiler import compile_spec
from castproxy.openapi.loader import SpecError
from castproxy.openapi.model import ToolDefinition

OK = {"200": {"description": "ok"}}


def op(operation_id: str | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"responses": OK, **fields}
    if operation_id:
        body["operationId"] = operation_id
    return body


def only_tool(document: dict[str, Any], **kwargs: Any) -> ToolDefinition:
    compiled = compile_spec(document, **kwargs)
    assert len(compiled.tools) == 1
    return compiled.tools[0]


def accepts(tool: ToolDefinition, arguments: dict[str, Any]) -> bool:
    Draft202012Validator.check_schema(tool.input_schema)
    return Draft202012Validator(tool.input_schema).is_valid(arguments)


def json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


# -- names ----------------------------------------------------------------------------------------


def test_names_are_sanitised_operation_ids() -> None:
    compiled = compile_spec(spec({
        "/repos/{owner}": {"get": op("repos/get for owner!", parameters=[
            {"name": "owner", "in": "path", "required": True, "schema": {"type": "string"}}])},
        "/long": {"get": op("x" * 100)},
    }))
    names = [tool.name for tool in compiled.tools]
    assert names[0] == "repos_get_for_owner"
    assert len(names[1]) == 64 and names[1].startswith("x" * 50)
    assert all(NAME_PATTERN.match(name) for name in names)
    assert compiled.tools[0].operation_id == "repos/get for owner!"


def test_names_without_operation_id_come_from_method_and_path() -> None:
    compiled = compile_spec(spec({"/pets/{petId}/toys": {"get": op(), "delete": op()}, "/": {"post": op()}}))
    assert [tool.name for tool in compiled.tools] == ["get_pets_petId_toys", "delete_pets_petId_toys", "post_root"]


def test_collisions_resolve_by_method_and_path_not_order() -> None:
    paths = {
        "/a": {"get": op("list items")},
        "/b": {"get": op("list_items")},
        "/c": {"get": op("list/items")},
    }
    first = {tool.operation.path: tool.name for tool in compile_spec(spec(paths)).tools}
    assert first["/b"] == "list_items"  # its operationId already is the name: it keeps it
    assert first["/a"].startswith("list_items_") and first["/c"].startswith("list_items_")
    assert len(set(first.values())) == 3

    reordered = {"/zz": {"post": op("unrelated")}, "/c": paths["/c"], "/b": paths["/b"], "/a": paths["/a"]}
    second = {tool.operation.path: tool.name for tool in compile_spec(spec(reordered)).tools}
    assert {path: second[path] for path in first} == first


def test_duplicate_operation_ids_get_distinct_stable_names() -> None:
    paths = {"/v1/x": {"get": op("getX")}, "/v2/x": {"get": op("getX")}}
    names = [tool.name for tool in compile_spec(spec(paths)).tools]
    assert len(set(names)) == 2
    more = {**paths, "/v3/y": {"get": op("getY")}}
    assert [tool.name for tool in compile_spec(spec(more)).tools][:2] == names


# -- parameters -----------------------------------------------------------------------------------


def test_same_name_in_different_places_kept_apart() -> None:
    tool = only_tool(spec({"/items/{id}": {"get": op("getItem", parameters=[
        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
        {"name": "id", "in": "query", "schema": {"type": "string"}, "description": "Filter id."},
        {"name": "id", "in": "header", "schema": {"type": "string"}},
    ])}}))
    props = tool.input_schema["properties"]
    assert set(props) == {"id", "query_id", "header_id"}
    assert props["query_id"]["description"].startswith("Sent as the query parameter `id`.")
    assert "Filter id." in props["query_id"]["description"]
    mapping = {(p.location, p.name): p.argument for p in tool.operation.parameters}
    assert mapping == {("path", "id"): "id", ("query", "id"): "query_id", ("header", "id"): "header_id"}
    assert tool.input_schema["required"] == ["id"]
    assert accepts(tool, {"id": 3, "query_id": "x"})
    assert not accepts(tool, {"query_id": "x"})


def test_operation_parameters_override_path_item_ones_and_styles_are_recorded() -> None:
    tool = only_tool(spec({"/s": {
        "parameters": [{"name": "tags", "in": "query", "schema": {"type": "string"}}],
        "get": op("search", parameters=[
            {"name": "tags", "in": "query", "style": "pipeDelimited", "explode": False,
             "schema": {"type": "array", "items": {"type": "string"}}},
            {"name": "filter", "in": "query", "style": "deepObject", "explode": True,
             "schema": {"type": "object", "properties": {"owner": {"type": "string"}}}},
            {"name": "sort", "in": "query", "schema": {"type": "string"}},
            {"name": "q", "in": "query", "content": {"application/json": {"schema": {"type": "object"}}}},
        ]),
    }}))
    specs = {p.name: p for p in tool.operation.parameters}
    assert (specs["tags"].style, specs["tags"].explode, specs["tags"].kind) == ("pipeDelimited", False, "array")
    assert (specs["filter"].style, specs["filter"].kind) == ("deepObject", "object")
    assert (specs["sort"].style, specs["sort"].explode) == ("form", True)  # OpenAPI defaults for query
    assert specs["q"].content_type == "application/json"
    assert accepts(tool, {"tags": ["a", "b"], "filter": {"owner": "me"}, "q": {"x": 1}})


def test_undeclared_path_parameter_is_added_with_a_warning() -> None:
    tool = only_tool(spec({"/users/{user}": {"get": op("getUser")}}))
    assert tool.input_schema["required"] == ["user"]
    assert any("{user} is not declared" in w and "getUser" in w for w in tool.warnings)


def test_authorization_header_parameter_is_left_out_with_a_warning() -> None:
    tool = only_tool(spec({"/x": {"get": op("getX", parameters=[
        {"name": "Authorization", "in": "header", "schema": {"type": "string"}}])}}))
    assert tool.input_schema["properties"] == {}
    assert tool.warnings and "getX (GET /x)" in tool.warnings[0]


def test_parameter_with_unknown_location_is_a_warning_naming_the_operation() -> None:
    compiled = compile_spec(spec({"/x": {"get": op("getX", parameters=[{"name": "b", "in": "body"}])}}))
    assert compiled.warnings == ("getX (GET /x): parameter 'b' is in 'body' (not path, query, header or cookie); "
                                 "left out",)


# -- bodies ---------------------------------------------------------------------------------------


def test_object_body_flattened_with_required_and_read_only_left_out() -> None:
    pet = {"type": "object", "required": ["id", "name"], "properties": {
        "id": {"type": "integer", "readOnly": True},
        "name": {"type": "string"},
        "tag": {"type": "string", "nullable": True},
    }}
    body = json_body({"$ref": "#/components/schemas/Pet"})
    tool = only_tool(spec({"/pets": {"post": op("addPet", requestBody=body)}}, components={"schemas": {"Pet": pet}}))
    assert set(tool.input_schema["properties"]) == {"name", "tag"}
    assert tool.input_schema["required"] == ["name"]
    assert tool.operation.body.properties == (("name", "name"), ("tag", "tag"))
    assert tool.operation.body.argument is None
    assert accepts(tool, {"name": "Rex", "tag": None})
    assert not accepts(tool, {"tag": "x"})


def test_body_clashing_with_a_parameter_goes_under_body() -> None:
    tool = only_tool(spec({"/pets/{name}": {"put": op("renamePet", parameters=[
        {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
        requestBody=json_body({"type": "object", "properties": {"name": {"type": "string"}}}))}}))
    assert tool.operation.body.argument == "body"
    assert tool.input_schema["required"] == ["name", "body"]
    assert accepts(tool, {"name": "old", "body": {"name": "new"}})


def test_non_object_body_is_wrapped() -> None:
    tool = only_tool(spec({"/tags": {"put": op("setTags", requestBody=json_body(
        {"type": "array", "items": {"type": "string"}}))}}))
    assert tool.operation.body.argument == "body"
    assert accepts(tool, {"body": ["a", "b"]})
    assert not accepts(tool, {"body": "a"})


def test_binary_body_is_base64_text() -> None:
    tool = only_tool(spec({"/img": {"post": op("upload", requestBody={
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}})}}))
    body = tool.operation.body
    assert body.binary and body.argument == "body" and body.content_type == "image/png"
    assert tool.input_schema["properties"]["body"]["contentEncoding"] == "base64"


def test_multipart_file_parts_are_base64_and_marked_binary() -> None:
    tool = only_tool(spec({"/docs": {"post": op("uploadDoc", requestBody={"required": True, "content": {
        "multipart/form-data": {
            "schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary"},
                "meta": {"type": "object", "properties": {"title": {"type": "string"}}},
                "note": {"type": "string"},
            }},
            "encoding": {"meta": {"contentType": "application/json"}},
        }}})}}))
    parts = {part.name: part for part in tool.operation.body.parts}
    assert parts["file"].binary and not parts["note"].binary
    assert parts["meta"].content_type == "application/json"
    file_schema = tool.input_schema["properties"]["file"]
    assert file_schema["contentEncoding"] == "base64" and "base64" in file_schema["description"]
    assert accepts(tool, {"file": "aGVsbG8=", "meta": {"title": "t"}, "note": "n"})
    assert not accepts(tool, {"note": "n"})


def test_form_body_records_field_encoding() -> None:
    tool = only_tool(spec({"/f": {"post": op("form", requestBody={"content": {
        "application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": {"ids": {"type": "array", "items": {"type": "integer"}}}},
            "encoding": {"ids": {"style": "form", "explode": False}},
        }}})}}))
    part = tool.operation.body.parts[0]
    assert (part.name, part.style, part.explode, part.binary) == ("ids", "form", False, False)
    assert accepts(tool, {"ids": [1, 2]})


# -- schemas --------------------------------------------------------------------------------------


def test_recursive_schema_is_kept_as_defs() -> None:
    ref = {"$ref": "#/components/schemas/Node"}
    node = {"type": "object", "properties": {"name": {"type": "string"}, "children": {"type": "array", "items": ref}}}
    tool = only_tool(spec({"/tree": {"post": op("addTree", requestBody=json_body(ref))}},
                          components={"schemas": {"Node": node}}))
    assert tool.input_schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert "Node" in tool.input_schema["$defs"]
    assert accepts(tool, {"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]})
    assert not accepts(tool, {"children": [{"children": [{"name": 3}]}]})


def test_all_of_merged_and_one_of_accepts_overlapping_variants() -> None:
    schemas = {
        "Base": {"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string"}},
                 "discriminator": {"propertyName": "kind"}},
        "Cat": {"allOf": [{"$ref": "#/components/schemas/Base"},
                          {"type": "object", "properties": {"lives": {"type": "integer"}}}]},
        "Dog": {"allOf": [{"$ref": "#/components/schemas/Base"},
                          {"type": "object", "properties": {"bark": {"type": "boolean"}}}]},
    }
    tool = only_tool(spec({"/pets": {"post": op("addPet", requestBody=json_body({
        "oneOf": [{"$ref": "#/components/schemas/Cat"}, {"$ref": "#/components/schemas/Dog"}],
        "discriminator": {"propertyName": "kind", "mapping": {"cat": "#/components/schemas/Cat",
                                                             "dog": "#/components/schemas/Dog"}}}))}},
                          components={"schemas": schemas}))
    body = tool.input_schema["properties"]["body"]
    cat = body["anyOf"][0]
    assert cat["properties"] == {"kind": {"type": "string"}, "lives": {"type": "integer"}}
    assert "`kind` property selects the variant (cat, dog)" in body["description"]
    assert accepts(tool, {"body": {"kind": "cat"}})  # matches both variants: oneOf would reject it
    assert not accepts(tool, {"body": {"lives": 9}})


def test_openapi_30_keywords_converted() -> None:
    tool = only_tool(spec({"/n": {"get": op("nums", parameters=[
        {"name": "n", "in": "query", "schema": {"type": "number", "minimum": 1, "exclusiveMinimum": True,
                                                "nullable": True, "example": 2, "x-internal": True}},
        {"name": "e", "in": "query", "schema": {"type": "string", "enum": ["a", "b"], "nullable": True}},
        {"name": "r", "in": "query", "schema": {"allOf": [{"type": "string"}], "nullable": True}},
    ])}}))
    props = tool.input_schema["properties"]
    assert props["n"] == {"type": ["number", "null"], "exclusiveMinimum": 1, "examples": [2]}
    assert props["e"]["enum"] == ["a", "b", None]
    assert accepts(tool, {"n": None, "e": None, "r": None})
    assert not accepts(tool, {"n": 1})


def test_write_only_left_out_of_output_and_outputs_wrapped_like_the_mapper() -> None:
    user = {"type": "object", "properties": {"name": {"type": "string"}, "password": {"type": "string",
                                                                                        "writeOnly": True}}}
    document = spec({
        "/me": {"get": op("me", responses={"200": {"description": "ok", "content": {"application/json": {
            "schema": user}}}})},
        "/list": {"get": op("list", responses={"200": {"description": "ok", "content": {"application/json": {
            "schema": {"type": "array", "items": user}}}}})},
    })
    assert all(tool.output_schema is None for tool in compile_spec(document).tools)  # off by default
    me, listing = compile_spec(document, output_schema=True).tools
    assert me.output_schema == {"type": "object", "properties": {"name": {"type": "string"}}}
    assert listing.output_schema["type"] == "object" and listing.output_schema["required"] == ["result"]
    Draft202012Validator(listing.output_schema).validate({"result": [{"name": "a"}]})


def test_nullable_object_output_mirrors_the_mapper() -> None:
    document = spec({"/app": {"get": op("getApp", responses={"200": {"description": "ok", "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/App"}}}}})}},
        components={"schemas": {"App": {"type": "object", "nullable": True,
                                        "properties": {"id": {"type": "integer"}}}}})
    output = only_tool(document, output_schema=True).output_schema
    Draft202012Validator.check_schema(output)
    validator = Draft202012Validator(output)
    assert validator.is_valid({"id": 1}) and validator.is_valid({"result": None})
    assert not validator.is_valid({"id": "x"})
    wrapped = {"type": "object", "properties": {"result": {"type": ["null"]}}, "required": ["result"]}
    assert output["anyOf"][1] == wrapped


def test_dangling_ref_is_an_error_naming_it() -> None:
    document = spec({"/x": {"post": op("x", requestBody=json_body({"$ref": "#/components/schemas/Missing"}))}})
    with pytest.raises(SpecError, match=r"'#/components/schemas/Missing' does not resolve"):
        compile_spec(document)


def test_remote_ref_is_an_error_naming_it() -> None:
    document = spec({"/x": {"post": op("x", requestBody=json_body({"$ref": "https://example.com/s.json#/Pet"}))}})
    with pytest.raises(SpecError, match=r"'https://example\.com/s\.json#/Pet' points outside the document"):
        compile_spec(document)


def test_invalid_schema_keyword_is_left_out_with_a_warning() -> None:
    tool = only_tool(spec({"/x": {"get": op("getX", parameters=[
        {"name": "f", "in": "query", "schema": {"type": "date", "minLength": -1}}])}}))
    Draft202012Validator.check_schema(tool.input_schema)
    assert any("'date' is not a JSON Schema type" in w for w in tool.warnings)


# -- description and annotations ------------------------------------------------------------------


def test_description_annotations_and_title() -> None:
    compiled = compile_spec(spec({"/p/{id}": {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "get": op("getP", summary="Get a P", description="Get a P. Returns it whole."),
        "put": op("putP", summary="Replace a P", description="Long. " * 400),
        "delete": op("deleteP", deprecated=True),
    }}))
    get, put, delete = compiled.tools
    assert get.description == "Get a P. Returns it whole."
    assert get.annotations == {"title": "Get a P", "readOnlyHint": True, "idempotentHint": True, "openWorldHint": True}
    assert len(put.description) <= 1024 and put.description.endswith("…")
    assert put.annotations["idempotentHint"] is True and put.annotations["destructiveHint"] is False
    assert delete.annotations["destructiveHint"] is True
    assert delete.description == "Deprecated. DELETE /p/{id}"


# -- swagger 2.0 and caching ----------------------------------------------------------------------


def test_swagger_2_is_converted() -> None:
    document = {
        "swagger": "2.0", "info": {"title": "s", "version": "1"}, "host": "api.example.com", "basePath": "/v1",
        "schemes": ["https"],
        "paths": {"/pets/{id}": {"post": {
            "operationId": "updatePet",
            "consumes": ["multipart/form-data"],
            "parameters": [
                {"name": "id", "in": "path", "required": True, "type": "integer"},
                {"name": "tags", "in": "query", "type": "array", "items": {"type": "string"},
                 "collectionFormat": "pipes"},
                {"name": "photo", "in": "formData", "type": "file", "required": True},
                {"name": "note", "in": "formData", "type": "string"},
            ],
            "responses": {"200": {"description": "ok"}},
        }}},
    }
    compiled = compile_spec(document)
    tool = compiled.tools[0]
    assert compiled.servers == ("https://api.example.com/v1",)
    assert tool.operation.body.content_type == "multipart/form-data"
    assert {part.name: part.binary for part in tool.operation.body.parts} == {"photo": True, "note": False}
    tags = next(p for p in tool.operation.parameters if p.name == "tags")
    assert (tags.style, tags.explode) == ("pipeDelimited", False)
    assert accepts(tool, {"id": 1, "tags": ["a"], "photo": "aGk=", "note": "n"})


def test_compile_is_cached_by_content() -> None:
    document = spec({"/x": {"get": op("getX")}})
    first = compile_spec(document)
    assert compile_spec(copy.deepcopy(document)) is first
    assert compile_spec(document, output_schema=True) is not first
    changed = spec({"/x": {"get": op("getX", summary="changed")}})
    assert compile_spec(changed) is not first
