"""Loading specs: files and URLs, JSON and YAML, bundled local refs, and one clear error per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openapi_support import SpecServer, spec

from castproxy.openapi.compiler import compile_spec
from castproxy.openapi.loader import FILES_KEY, SpecError, load_document

PETS = spec({"/pets": {"get": {"operationId": "listPets", "responses": {"200": {"description": "ok"}}}}})


def test_json_file_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "api.json").write_text(json.dumps(PETS))
    document = load_document("specs/api.json", tmp_path)
    assert document["paths"] == PETS["paths"]
    assert document.digest  # content hash, used by the compiler cache


def test_yaml_file_keys_and_dates_become_json_values(tmp_path: Path) -> None:
    (tmp_path / "api.yaml").write_text(
        "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /pets:\n    get:\n      operationId: listPets\n"
        "      parameters:\n        - {name: since, in: query, schema: {type: string, example: 2024-01-02}}\n"
        "      responses:\n        200: {description: ok}\n"
    )
    document = load_document("api.yaml", tmp_path)
    operation = document["paths"]["/pets"]["get"]
    assert "200" in operation["responses"]
    assert operation["parameters"][0]["schema"]["example"] == "2024-01-02"
    json.dumps(document)  # nothing YAML-only left


def test_digest_follows_content(tmp_path: Path) -> None:
    path = tmp_path / "api.json"
    path.write_text(json.dumps(PETS))
    first = load_document("api.json", tmp_path).digest
    assert load_document("api.json", tmp_path).digest == first
    path.write_text(json.dumps(PETS, indent=1))
    assert load_document("api.json", tmp_path).digest != first


def test_refs_into_other_files_in_the_spec_folder(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "pet.yaml").write_text(
        "Pet:\n  type: object\n  required: [name]\n  properties:\n    name: {type: string}\n"
        "    owner: {$ref: '#/Owner'}\n    tags: {$ref: 'common.json#/Tags'}\n"
        "Owner:\n  type: object\n  properties:\n    email: {type: string}\n"
    )
    tags = {"Tags": {"type": "array", "items": {"type": "string"}}}
    (tmp_path / "schemas" / "common.json").write_text(json.dumps(tags))
    document = spec({"/pets": {"post": {
        "operationId": "addPet",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "schemas/pet.yaml#/Pet"}}}},
        "responses": {"201": {"description": "created"}},
    }}})
    (tmp_path / "api.json").write_text(json.dumps(document))
    loaded = load_document("api.json", tmp_path)
    assert set(loaded[FILES_KEY]) == {"schemas/pet.yaml", "schemas/common.json"}
    tool = compile_spec(loaded).tools[0]
    assert tool.input_schema["properties"]["owner"]["properties"]["email"] == {"type": "string"}
    assert tool.input_schema["properties"]["tags"] == {"type": "array", "items": {"type": "string"}}
    assert tool.input_schema["required"] == ["name"]


def test_ref_outside_the_spec_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "secret.json").write_text("{}")
    (tmp_path / "api").mkdir()
    document = spec({"/x": {"get": {"responses": {"200": {"$ref": "../secret.json#/"}}}}})
    (tmp_path / "api" / "spec.json").write_text(json.dumps(document))
    with pytest.raises(SpecError, match=r"\.\./secret\.json.*outside the spec's folder"):
        load_document("api/spec.json", tmp_path)


@pytest.mark.parametrize("ref", ["https://example.com/schemas.json#/Pet", "//example.com/pet.json"])
def test_remote_ref_is_an_error_naming_it(tmp_path: Path, ref: str) -> None:
    document = spec({"/x": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": ref}}}},
                                     "responses": {"200": {"description": "ok"}}}}})
    (tmp_path / "api.json").write_text(json.dumps(document))
    with pytest.raises(SpecError, match="remote \\$ref") as caught:
        load_document("api.json", tmp_path)
    assert ref in str(caught.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"openapi": "3.0.0", "paths": {', r"not valid JSON \(line 1, column"),
        ("openapi: 3.0.0\npaths: [\n  - : :\n", "not valid JSON or YAML"),
        ("- just\n- a list\n", "not an OpenAPI document .*a list"),
        ('{"title": "some JSON"}', "no 'openapi' or 'swagger' version field"),
        ('{"openapi": "4.0.0", "paths": {}}', "OpenAPI version '4.0.0' is not supported"),
        ('{"swagger": "1.2", "paths": {}}', "Swagger version '1.2' is not supported"),
        ("\x00\xff\xfe binary", "not valid|not UTF-8"),
    ],
)
def test_bad_documents_get_one_clear_error(tmp_path: Path, content: str, expected: str) -> None:
    (tmp_path / "api.yaml").write_text(content, encoding="latin-1")
    with pytest.raises(SpecError, match=expected):
        load_document("api.yaml", tmp_path)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nope\.yaml: no such file"):
        load_document("nope.yaml", tmp_path)


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    (tmp_path / "api.json").write_text(json.dumps(PETS))
    with pytest.raises(SpecError, match="over the 100-byte limit"):
        load_document("api.json", tmp_path, max_bytes=100)


def test_non_http_url_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="only http"):
        load_document("ftp://example.com/spec.json", tmp_path)


def test_fetches_a_url(spec_server: SpecServer, tmp_path: Path) -> None:
    url = spec_server.add_json("/openapi.json", PETS)
    assert load_document(url, tmp_path)["paths"] == PETS["paths"]


def test_url_offline_is_skipped_not_fetched(spec_server: SpecServer, tmp_path: Path) -> None:
    url = spec_server.add_json("/openapi.json", PETS)
    with pytest.raises(SpecError) as caught:
        load_document(url, tmp_path, offline=True)
    assert caught.value.offline_skipped


def test_url_that_times_out(spec_server: SpecServer, tmp_path: Path) -> None:
    url = spec_server.add_json("/slow.json", PETS, delay=3.0)
    with pytest.raises(SpecError, match=r"timed out after 0\.5 s"):
        load_document(url, tmp_path, timeout=0.5)


def test_url_that_drips_past_the_deadline(spec_server: SpecServer, tmp_path: Path) -> None:
    spec_server.routes["/drip"] = (200, {}, [b" "] * 20 + [json.dumps(PETS).encode()], 0.1)
    with pytest.raises(SpecError, match=r"timed out after 0\.5 s"):
        load_document(spec_server.url + "/drip", tmp_path, timeout=0.5)


def test_url_too_large_by_content_length(spec_server: SpecServer, tmp_path: Path) -> None:
    url = spec_server.add_json("/big.json", {**PETS, "x-pad": "a" * 5000})
    with pytest.raises(SpecError, match="over the 1000-byte limit"):
        load_document(url, tmp_path, max_bytes=1000)


def test_url_too_large_while_streaming(spec_server: SpecServer, tmp_path: Path) -> None:
    spec_server.routes["/stream"] = (200, {}, [b"x" * 600] * 5, 0.0)
    with pytest.raises(SpecError, match="over the 1000-byte limit"):
        load_document(spec_server.url + "/stream", tmp_path, max_bytes=1000)


def test_url_error_status(spec_server: SpecServer, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="HTTP 404"):
        load_document(spec_server.url + "/missing.json", tmp_path)


def test_url_connection_refused(tmp_path: Path) -> None:
    server = SpecServer()
    url = server.url + "/openapi.json"
    server.stop()
    with pytest.raises(SpecError, match="cannot fetch the spec"):
        load_document(url, tmp_path, timeout=2)


def test_url_spec_with_relative_ref_is_a_remote_ref(spec_server: SpecServer, tmp_path: Path) -> None:
    document = spec({"/x": {"get": {"responses": {"200": {"$ref": "responses.json#/ok"}}}}})
    url = spec_server.add_json("/openapi.json", document)
    with pytest.raises(SpecError, match=r"'responses\.json#/ok'"):
        load_document(url, tmp_path)


def test_unchanged_spec_is_neither_parsed_nor_compiled_again(tmp_path: Path) -> None:
    (tmp_path / "api.json").write_text(json.dumps(PETS))
    first = load_document("api.json", tmp_path)
    again = load_document("api.json", tmp_path)
    assert again is first
    assert compile_spec(again) is compile_spec(first)


def test_remote_ref_is_refused_on_every_fetch(spec_server: SpecServer, tmp_path: Path) -> None:
    document = spec({"/x": {"get": {"responses": {"200": {"$ref": "https://example.com/r.json#/ok"}}}}})
    url = spec_server.add_json("/openapi.json", document)
    for _ in range(2):
        with pytest.raises(SpecError, match="remote refs"):
            load_document(url, tmp_path)


def test_yaml_alias_bomb_is_refused_at_load(tmp_path: Path) -> None:
    levels = ["a0: &a0 {type: object, properties: {x: {type: string}}}"]
    for n in range(1, 12):
        fields = ", ".join(f"p{i}: *a{n - 1}" for i in range(8))
        levels.append(f"a{n}: &a{n} {{type: object, properties: {{{fields}}}}}")
    (tmp_path / "bomb.yaml").write_text(
        "openapi: 3.0.3\ninfo: {title: t, version: '1'}\nx-anchors:\n"
        + "".join(f"  {line}\n" for line in levels)
        + "paths:\n  /x:\n    post:\n      requestBody: {content: {application/json: {schema: *a11}}}\n"
        "      responses: {'200': {description: ok}}\n"
    )
    with pytest.raises(SpecError, match=r"bomb.yaml: YAML aliases expand to over 10,000,000 values"):
        load_document("bomb.yaml", tmp_path)


def test_shared_yaml_anchors_within_reason_load(tmp_path: Path) -> None:
    """Anchors used for reuse (a schema referenced a few times) are not mistaken for a bomb."""
    (tmp_path / "spec.yaml").write_text(
        "openapi: 3.0.3\ninfo: {title: t, version: '1'}\n"
        "x-shared: &item {type: object, properties: {id: {type: integer}}}\n"
        "paths:\n  /x:\n    post:\n      operationId: make\n"
        "      requestBody: {content: {application/json: {schema: *item}}}\n"
        "      responses: {'200': {description: ok, content: {application/json: {schema: *item}}}}\n"
    )
    assert compile_spec(load_document("spec.yaml", tmp_path)).tools[0].name == "make"


def test_deeply_nested_schema_is_an_error_not_a_crash() -> None:
    schema: dict = {"type": "string"}
    for _ in range(3000):
        schema = {"type": "array", "items": schema}
    document = spec({"/x": {"post": {"requestBody": {"content": {"application/json": {"schema": schema}}},
                                     "responses": {"200": {"description": "ok"}}}}})
    with pytest.raises(SpecError, match="nests too deeply"):
        compile_spec(document)


def test_deeply_nested_json_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text('{"openapi": "3.0.0", "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(SpecError, match=r"deep\.json: nests too deeply"):
        load_document("deep.json", tmp_path)


def test_ref_in_a_path_or_as_a_property_name_is_not_an_external_ref(tmp_path: Path) -> None:
    """Graph's paths end in `/$ref` and schemas may have a `$ref` property: neither makes the loader walk
    the whole document for files to bundle (47 MB: seconds), so the parse is reused as for any spec."""
    document = spec({"/groups/{id}/members/$ref": {"post": {"requestBody": {"content": {"application/json": {
        "schema": {"type": "object", "properties": {"$ref": {"type": "string"}}}}}},
        "responses": {"204": {"description": "ok"}}}}})
    (tmp_path / "graph.json").write_text(json.dumps(document))
    (tmp_path / "graph.yaml").write_text("openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n"
                                         "  /a/$ref:\n    get:\n      responses: {'200': {description: ok}}\n")
    for name in ("graph.json", "graph.yaml"):
        first = load_document(name, tmp_path)
        assert load_document(name, tmp_path) is first  # bundled documents are never reused
