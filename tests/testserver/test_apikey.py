"""Mode `apikey`: the X-API-Key header is required and checked."""

from __future__ import annotations

import re


def test_generated_key_is_required_and_accepted(start_server, http):
    app, server = start_server("apikey")
    key = app.state.credentials.api_key
    assert re.fullmatch(r"cast_[A-Za-z0-9_-]{20,}", key)
    missing = http.get(f"{server.url}/api/items")
    assert missing.status_code == 401 and missing.json()["error"] == "MISSING_API_KEY"
    wrong = http.get(f"{server.url}/api/items", headers={"X-API-Key": key + "x"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "INVALID_API_KEY"
    ok = http.get(f"{server.url}/api/items", headers={"X-API-Key": key})
    assert ok.status_code == 200 and ok.json()["total"] == 3
    assert http.get(f"{server.url}/api/me", headers={"X-API-Key": key}).json()["auth"] == "apikey"


def test_key_in_another_header_or_as_bearer_is_refused(start_server, http):
    _, server = start_server("apikey", api_key="cast_fixed")
    assert http.get(f"{server.url}/api/users", headers={"Authorization": "Bearer cast_fixed"}).status_code == 401
    assert http.delete(f"{server.url}/api/items/1", headers={"X-Api-Key": "cast_fixed"}).status_code == 204


def test_each_server_generates_its_own_key(start_server):
    first, _ = start_server("apikey")
    second, _ = start_server("apikey")
    assert first.state.credentials.api_key != second.state.credentials.api_key


def test_document_is_public_and_declares_the_key_scheme(start_server, http):
    _, server = start_server("apikey")
    document = http.get(f"{server.url}/openapi.json").json()
    assert document["components"]["securitySchemes"] == {
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}
    assert document["security"] == [{"apiKey": []}]
