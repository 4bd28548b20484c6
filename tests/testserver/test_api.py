"""The items/users REST API in mode `none`, and its OpenAPI document."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator


def test_seeded_items_and_users_are_listed(start_server, http):
    _, server = start_server("none")
    items = http.get(f"{server.url}/api/items").json()
    assert items["total"] == 3
    assert [item["name"] for item in items["items"]] == ["Widget", "Gadget", "Gizmo"]
    users = http.get(f"{server.url}/api/users", params={"role": "admin"}).json()
    assert [user["email"] for user in users["users"]] == ["alice@example.com"]


def test_create_get_patch_delete_an_item(start_server, http):
    _, server = start_server("none")
    created = http.post(f"{server.url}/api/items", json={"name": "Sprocket", "price": 3.5, "tags": ["new"]})
    assert created.status_code == 201
    item = created.json()
    assert item["name"] == "Sprocket" and item["id"] == 4 and item["created_at"].endswith("Z")
    assert http.get(f"{server.url}/api/items/4").json() == item
    patched = http.patch(f"{server.url}/api/items/4", json={"price": 4})
    assert patched.json()["price"] == 4
    deleted = http.delete(f"{server.url}/api/items/4")
    assert deleted.status_code == 204 and deleted.content == b""
    missing = http.get(f"{server.url}/api/items/4")
    assert missing.status_code == 404
    assert missing.json() == {"error": "NOT_FOUND", "message": "no item with id 4"}


def test_bodies_are_validated_against_the_document_schemas(start_server, http):
    _, server = start_server("none")
    no_name = http.post(f"{server.url}/api/items", json={"price": 1})
    assert no_name.status_code == 400
    assert no_name.json()["error"] == "VALIDATION_ERROR"
    assert "'name' is a required property" in no_name.json()["message"]
    negative = http.post(f"{server.url}/api/items", json={"name": "x", "price": -1})
    assert negative.json()["message"].startswith("price:")
    not_json = http.post(f"{server.url}/api/items", content=b"{oops", headers={"content-type": "application/json"})
    assert not_json.json()["message"] == "the body is not valid JSON"
    unknown_field = http.patch(f"{server.url}/api/items/1", json={"colour": "red"})
    assert unknown_field.status_code == 400
    empty_patch = http.patch(f"{server.url}/api/items/1", json={})
    assert empty_patch.status_code == 400


def test_query_parameters_are_checked(start_server, http):
    _, server = start_server("none")
    assert http.get(f"{server.url}/api/items", params={"limit": "0"}).json() == {
        "error": "VALIDATION_ERROR", "message": "limit must be between 1 and 100, got 0"}
    assert http.get(f"{server.url}/api/items", params={"limit": "x"}).status_code == 400
    page = http.get(f"{server.url}/api/items", params={"limit": 1, "offset": 1}).json()
    assert [item["name"] for item in page["items"]] == ["Gadget"] and page["total"] == 3
    assert http.get(f"{server.url}/api/items", params={"q": "SHINY"}).json()["items"][0]["name"] == "Gizmo"
    assert http.get(f"{server.url}/api/users", params={"role": "owner"}).status_code == 400


def test_search_takes_an_exploded_array_and_a_price_range(start_server, http):
    _, server = start_server("none")
    found = http.get(f"{server.url}/api/search/items", params=[("tags", "tools"), ("tags", "small")]).json()
    assert [item["name"] for item in found["items"]] == ["Widget"]
    cheap_first = http.get(f"{server.url}/api/search/items", params={"max_price": 50, "sort": "price"}).json()
    assert [item["name"] for item in cheap_first["items"]] == ["Widget", "Gadget"]
    assert http.get(f"{server.url}/api/search/items", params={"min_price": "lots"}).status_code == 400


def test_idempotency_key_header_returns_the_first_item(start_server, http):
    _, server = start_server("none")
    headers = {"Idempotency-Key": "abc"}
    first = http.post(f"{server.url}/api/items", json={"name": "Once"}, headers=headers)
    again = http.post(f"{server.url}/api/items", json={"name": "Once"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert http.get(f"{server.url}/api/items").json()["total"] == 4


def test_unknown_paths_and_methods_answer_json(start_server, http):
    _, server = start_server("none")
    assert http.get(f"{server.url}/api/nothing").json()["error"] == "NOT_FOUND"
    assert http.get(f"{server.url}/api/items/abc").status_code == 404
    wrong_method = http.put(f"{server.url}/api/items")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "METHOD_NOT_ALLOWED"
    assert http.get(f"{server.url}/api/users/99").status_code == 404
    assert http.get(f"{server.url}/api/me").json() == {"auth": "none", "user": None, "client_id": None, "scopes": []}


def test_document_lists_the_operations_with_servers_set_to_its_own_url(start_server, http):
    _, server = start_server("none")
    document = http.get(f"{server.url}/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"][0]["url"] == server.url
    operation_ids = {op["operationId"] for path in document["paths"].values() for op in path.values()
                     if isinstance(op, dict) and "operationId" in op}
    assert {"listItems", "createItem", "getItem", "deleteItem", "listUsers"} <= operation_ids
    assert "security" not in document and "securitySchemes" not in document["components"]
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_every_ref_in_the_document_resolves(start_server, http):
    _, server = start_server("none")
    document = http.get(f"{server.url}/openapi.json").json()

    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(document):
        target = document
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), ref


def test_responses_match_the_documented_schemas(start_server, http):
    _, server = start_server("none")
    document = http.get(f"{server.url}/openapi.json").json()
    schemas = {"$defs": document["components"]["schemas"]}

    def check(body, name):
        schema = {**schemas, "$ref": f"#/$defs/{name}"}
        text = json.dumps(schema).replace("#/components/schemas/", "#/$defs/")
        errors = [error.message for error in Draft202012Validator(json.loads(text)).iter_errors(body)]
        assert errors == [], f"{name}: {errors}"

    check(http.get(f"{server.url}/api/items").json(), "ItemList")
    check(http.get(f"{server.url}/api/items/1").json(), "Item")
    check(http.get(f"{server.url}/api/users").json(), "UserList")
    check(http.get(f"{server.url}/api/me").json(), "Caller")
