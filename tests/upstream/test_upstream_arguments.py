"""Argument checking messages, and the static upstream credentials."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from castproxy.auth.static import static_credentials
from castproxy.config.model import ApiKeyAuth, BearerAuth, HeadersAuth, NoAuth
from castproxy.upstream.arguments import ArgumentValidator

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 100},
        "status": {"enum": ["open", "closed"]},
        "code": {"type": "string", "pattern": "^[A-Z]{3}$", "maxLength": 3},
        "password": {"type": "string", "minLength": 12},
        "pin": {"type": "string", "format": "password", "pattern": "^[0-9]+$"},
        "api_token": {"type": "integer"},
        "filter": {
            "type": "object",
            "properties": {"tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2}},
            "required": ["tags"],
            "additionalProperties": False,
        },
        "when": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    },
    "required": ["id"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def validator() -> ArgumentValidator:
    return ArgumentValidator(SCHEMA)


def test_valid_arguments_have_no_errors(validator):
    assert validator.errors({"id": 1, "limit": 10, "status": "open", "filter": {"tags": ["a"]}}) == []


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, ["missing required argument 'id'"]),
        ({"id": 1, "limit": "abc"}, ["argument 'limit': 'abc' is not of type 'integer'"]),
        ({"id": 1, "limit": 500}, ["argument 'limit': 500 is greater than the maximum of 100"]),
        ({"id": 1, "limit": 0}, ["argument 'limit': 0 is less than the minimum of 1"]),
        ({"id": 1, "status": "gone"}, ["argument 'status': 'gone' is not one of 'open', 'closed'"]),
        ({"id": 1, "code": "ab"}, ["argument 'code': 'ab' does not match the pattern '^[A-Z]{3}$'"]),
        (
            {"id": 1, "code": "ABCD"},
            [
                "argument 'code': 'ABCD' does not match the pattern '^[A-Z]{3}$'",
                "argument 'code' is too long (at most 3 characters)",
            ],
        ),
        ({"id": 1, "extra": 1}, ["unexpected argument 'extra'"]),
        ({"id": 1, "filter": {}}, ["missing required argument 'filter.tags'"]),
        (
            {"id": 1, "filter": {"tags": [1, "b", "c"]}},
            ["argument 'filter.tags[0]': 1 is not of type 'string'", "argument 'filter.tags' takes at most 2 items"],
        ),
        (
            {"id": 1, "when": [1]},
            ["argument 'when' does not match any of the allowed forms (argument 'when': [1] is not of type 'string')"],
        ),
        ([], ["the arguments must be a JSON object"]),
    ],
)
def test_messages_name_the_argument(validator, arguments, expected):
    assert sorted(validator.errors(arguments)) == sorted(expected)


def test_every_problem_is_listed(validator):
    errors = validator.errors({"limit": "x", "status": 3, "nope": True})
    assert "missing required argument 'id'" in errors
    assert "unexpected argument 'nope'" in errors
    assert any(e.startswith("argument 'limit'") for e in errors)
    assert any(e.startswith("argument 'status'") for e in errors)


@pytest.mark.parametrize(
    ("arguments", "secret"),
    [
        ({"id": 1, "password": "hunter2"}, "hunter2"),  # secret by name
        ({"id": 1, "pin": "12ab-secret"}, "12ab-secret"),  # secret by format: password
        ({"id": 1, "api_token": "tok-987"}, "tok-987"),  # secret by name, wrong type
    ],
)
def test_secret_values_are_never_echoed(validator, arguments, secret):
    errors = validator.errors(arguments)
    assert errors and all(secret not in e for e in errors), errors


def test_long_values_are_cut_short(validator):
    (message,) = validator.errors({"id": "y" * 5000})
    assert len(message) < 100 and message.startswith("argument 'id': 'yyyy") and "…" in message


def test_refs_and_defs_are_followed():
    schema = {
        "type": "object",
        "properties": {"item": {"$ref": "#/$defs/Item"}},
        "$defs": {"Item": {"type": "object", "required": ["name"]}},
    }
    assert ArgumentValidator(schema).errors({"item": {}}) == ["missing required argument 'item.name'"]


# ---- static credentials ------------------------------------------------------------------------------


async def test_bearer_sets_authorization_and_replaces_any_case_variant():
    credentials = static_credentials(BearerAuth(type="bearer", token=SecretStr("t0k")))
    assert credentials.protected_headers == frozenset({"authorization"})
    headers = {"authorization": "Bearer evil", "AUTHORIZATION": "x", "Accept": "*/*"}
    await credentials.apply(headers, None)
    assert headers == {"Accept": "*/*", "Authorization": "Bearer t0k"}
    assert "t0k" not in repr(credentials)
    # A static token the upstream refused cannot be renewed: the same one is set again.
    await credentials.apply(headers, None, refused="t0k")
    assert headers == {"Accept": "*/*", "Authorization": "Bearer t0k"}


async def test_api_key_and_headers_kinds():
    api_key = static_credentials(ApiKeyAuth(type="api_key", header="X-Api-Key", value=SecretStr("k")))
    assert api_key.protected_headers == frozenset({"x-api-key"})
    headers: dict[str, str] = {}
    await api_key.apply(headers, None)
    assert headers == {"X-Api-Key": "k"}

    several = static_credentials(
        HeadersAuth(type="headers", headers={"X-Tenant": SecretStr("acme"), "X-Key": SecretStr("s3")})
    )
    assert several.protected_headers == frozenset({"x-tenant", "x-key"})
    headers = {"x-key": "forged"}
    await several.apply(headers, "ignored-grant")
    assert headers == {"X-Tenant": "acme", "X-Key": "s3"}
    assert "s3" not in repr(several)


async def test_none_adds_nothing():
    credentials = static_credentials(NoAuth(type="none"))
    headers = {"Authorization": "whatever the config says"}
    await credentials.apply(headers, None)
    assert credentials.protected_headers == frozenset()
    assert headers == {"Authorization": "whatever the config says"}


def test_credential_with_a_newline_is_refused():
    with pytest.raises(ValueError, match="control character") as caught:
        static_credentials(BearerAuth(type="bearer", token=SecretStr("abc\r\nX-Evil: 1")))
    assert "abc" not in str(caught.value)
