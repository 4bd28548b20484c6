"""Real-world specs: every OpenAPI 3.x document of @readme/oas-examples and GitHub's REST API spec.

Every tool must have a valid JSON Schema 2020-12 input schema, a name matching the pattern, and a
unique name; the cycle, polymorphism, form, multipart and parameter-style examples must accept a
correct example call (and reject a wrong one, so the check can fail).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_support import CORPUS, NAME_PATTERN, corpus_dir

from castproxy.openapi.compiler import METHODS, compile_spec
from castproxy.openapi.loader import load_document
from castproxy.openapi.model import CompiledSpec, ToolDefinition
from castproxy.openapi.refs import RefResolver

EXAMPLES = CORPUS / "@readme" / "oas-examples"
DOCUMENTS = sorted(
    str(path.relative_to(EXAMPLES)) for version in ("3.0", "3.1") for path in (EXAMPLES / version).rglob("*")
    if path.suffix in (".json", ".yaml")
) if EXAMPLES.is_dir() else ["(corpus missing)"]


def compiled(oas_examples: Path, relative: str, **kwargs: Any) -> CompiledSpec:
    return compile_spec(load_document(relative, oas_examples), **kwargs)


def tool_named(spec: CompiledSpec, name: str) -> ToolDefinition:
    return next(tool for tool in spec.tools if tool.name == name)


META = Draft202012Validator(Draft202012Validator.META_SCHEMA)


def check_shared(label: str, schema: dict[str, Any], checked: set[int]) -> None:
    """check_schema's verdict, checking sub-schemas shared between tools (the compiler shares them) once:
    the meta-schema checks each property and each `$defs` entry on its own."""
    parts = {**schema.get("properties", {}), **{f"$defs/{k}": v for k, v in schema.get("$defs", {}).items()}}
    root = {**schema, "properties": {key: {} for key in schema.get("properties", {})}}
    root.pop("$defs", None)
    for where, part in [("(root)", root), *parts.items()]:
        if id(part) in checked:
            continue
        checked.add(id(part))
        errors = list(META.iter_errors(part))
        assert not errors, f"{label} {where}: {errors[0].message}"


def assert_valid_tools(spec: CompiledSpec) -> None:
    names = [tool.name for tool in spec.tools]
    assert len(names) == len(set(names)), "tool names must be unique"
    checked: set[int] = set()
    for tool in spec.tools:
        assert NAME_PATTERN.match(tool.name), tool.name
        Draft202012Validator.check_schema(tool.input_schema)
        assert tool.input_schema["type"] == "object"
        if tool.output_schema is not None:
            check_shared(tool.name, tool.output_schema, checked)
            assert tool.output_schema["type"] == "object"
        json.dumps(tool.input_schema)  # what tools/list sends must serialise


@pytest.mark.parametrize("relative", DOCUMENTS)
def test_every_example_document_compiles_to_valid_tools(oas_examples: Path, relative: str) -> None:
    document = load_document(relative, oas_examples)
    spec = compile_spec(document)
    assert_valid_tools(spec)
    if relative.endswith(".json"):  # the YAML files are the same documents again
        assert_valid_tools(compile_spec(document, output_schema=True))
    resolver = RefResolver(document)
    items = [resolver.follow(item, path)[0] for path, item in (document.get("paths") or {}).items()]
    assert len(spec.tools) == sum(1 for item in items for method in METHODS if method in item)


def valid(tool: ToolDefinition, arguments: dict[str, Any]) -> bool:
    return Draft202012Validator(tool.input_schema).is_valid(arguments)


# (document, tool, a correct call, a wrong call)
EXAMPLE_CALLS = [
    # cycles
    ("3.0/json/circular-request-bodies.json", "indirectCircular",
     {"name": "Ann", "employer": {"name": "Acme", "ceo": {"name": "Bob", "employer": {"name": "Sub"}}}},
     {"name": "Ann", "employer": {"ceo": {"name": 7}}}),
    ("3.0/yaml/circular-request-bodies.yaml", "multipleCircular",
     {"id": "a", "next": {"id": "b", "prev": {"id": "a"}, "next": {"id": "c"}}},
     {"id": "a", "next": {"next": {}}}),
    ("3.0/json/circular-request-bodies.json", "polymorphicCircular",
     {"type": "binary", "value": {"type": "literal", "value": "x"}},
     {"type": "unary", "value": "x"}),
    ("3.0/json/schema-circular.json", "post_not-quite-circular",
     {"rules": {"transitions": [{"offsetBefore": {"id": "CET", "rules": {"transitions": []}},
                                 "dateTimeAfter": "2024-03-31T01:00:00Z"}]}},
     {"rules": {"transitions": [{"offsetBefore": {"id": 1}}]}}),
    # polymorphism
    ("3.0/json/polymorphism.json", "patch_pets", {"body": {"pet_type": "Cat", "hunts": True, "age": 3}},
     {"body": {"hunts": True}}),
    ("3.0/json/polymorphism.json", "post_anything_one-of-primitive", {"body": 42}, {"body": [1]}),
    ("3.0/json/polymorphism.json", "post_anything_all-of-object", {"a": "1", "b": "2", "c": "3", "d": "4"},
     {"a": 1}),
    ("3.0/json/discriminators.json", "oneOfWithTopLevelDiscriminatorAndMapping",
     {"body": {"discrim": "Option One", "optionone": 1.5}}, {"body": {"optionone": 1.5}}),
    ("3.1/json/petstore.json", "addPet", {"name": "Rex", "photoUrls": ["https://x/1.png"], "status": "available"},
     {"name": "Rex"}),
    # forms and multipart
    ("3.0/json/form-data.json", "demoFormData", {"client_id": "id", "client_secret": "secret", "scope": 2},
     {"scope": "all"}),
    ("3.0/json/file-uploads.json", "post_anything_multipart-formdata",
     {"orderId": 1, "userId": 2, "documentFile": "JVBERi0xLjQK"}, {"orderId": "one"}),
    ("3.0/json/file-uploads.json", "put_anything_multipart-formdata", {"filename": ["aGVsbG8=", "d29ybGQ="]},
     {"filename": "aGVsbG8="}),
    ("3.0/json/file-uploads.json", "post_anything_image-png", {"body": "iVBORw0KGgo="}, {"body": 5}),
    # parameter styles
    ("3.0/json/parameters-style.json", "paths_matrix_exploded",
     {"primitive": "p", "array": ["a", "b"], "object": {"name": "n", "description": "d"}},
     {"primitive": "p", "array": ["a"]}),
    ("3.0/json/parameters-style.json", "query_deepObject_nonExploded", {"object": {"name": "n"}},
     {"object": "name=n"}),
    ("3.1/yaml/parameters-style.yaml", "formData_form_nonExploded",
     {"primitive": "p", "array": ["a"], "object": {"foo": "f"}}, {"array": "a"}),
]


@pytest.mark.parametrize(("relative", "name", "good", "bad"), EXAMPLE_CALLS,
                         ids=[f"{call[0].split('/')[-1]}:{call[1]}" for call in EXAMPLE_CALLS])
def test_example_calls_are_accepted(oas_examples: Path, relative: str, name: str, good: dict, bad: dict) -> None:
    tool = tool_named(compiled(oas_examples, relative), name)
    Draft202012Validator(tool.input_schema).validate(good)
    assert not valid(tool, bad)


def test_recursive_schemas_stay_defs(oas_examples: Path) -> None:
    tool = tool_named(compiled(oas_examples, "3.0/json/circular-request-bodies.json"), "directCircular")
    assert set(tool.input_schema["$defs"]) == {"TreeNode"}
    assert tool.input_schema["properties"]["children"]["items"] == {"$ref": "#/$defs/TreeNode"}


def test_parameter_styles_are_recorded(oas_examples: Path) -> None:
    spec = compiled(oas_examples, "3.0/json/parameters-style.json")
    styles = {(tool.name, p.name): (p.location, p.style, p.explode, p.kind)
              for tool in spec.tools for p in tool.operation.parameters}
    assert styles[("paths_matrix_exploded", "array")] == ("path", "matrix", True, "array")
    assert styles[("paths_label_nonExploded", "object")] == ("path", "label", False, "object")
    assert styles[("query_deepObject_nonExploded", "object")] == ("query", "deepObject", True, "object")
    assert styles[("query_pipeDelimited_nonExploded", "array")] == ("query", "pipeDelimited", False, "array")
    assert styles[("headers_simple_exploded", "object")] == ("header", "simple", True, "object")
    assert styles[("cookies_form_nonExploded", "array")] == ("cookie", "form", False, "array")
    form = tool_named(spec, "formData_form_nonExploded").operation.body
    assert form.content_type == "multipart/form-data"
    assert {(part.name, part.style, part.explode) for part in form.parts} >= {("array", "form", False)}


def test_github_spec_compiles_every_operation_to_a_valid_tool(github_spec: Path) -> None:
    corpus_dir("@octokit/openapi")
    document = load_document(str(github_spec), Path("/"))
    spec = compile_spec(document)
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in METHODS
                  if method in item}
    assert len(operations) > 1000
    assert {(tool.operation.method, tool.operation.path) for tool in spec.tools} == operations
    names = {tool.name for tool in spec.tools}
    assert len(names) == len(spec.tools)
    checked: set[int] = set()
    for tool in spec.tools:
        assert NAME_PATTERN.match(tool.name), tool.name
        check_shared(tool.name, tool.input_schema, checked)
    repo = next(tool for tool in spec.tools if tool.operation_id == "repos/get")
    assert repo.name == "repos_get"
    assert Draft202012Validator(repo.input_schema).is_valid({"owner": "octocat", "repo": "hello-world"})
    assert not Draft202012Validator(repo.input_schema).is_valid({"owner": "octocat"})
