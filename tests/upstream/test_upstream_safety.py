"""Forwarding safety: hostile argument values against a real recording upstream.

Each row either reaches the upstream as exactly the request written in the row (raw path and
query as on the request line, and the headers that matter), or is refused with an ArgumentError
whose message names the argument. Whatever happens, the request stays on the configured host and
under the base path, and carries exactly one Authorization and one Host header: the configured ones.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr
from support.tool_definitions import FORM_TOOL, ITEM_TOOL, MULTIPART_OBJECT_TOOL

from castproxy.auth.static import static_credentials
from castproxy.config.model import ApiKeyAuth, BearerAuth
from castproxy.upstream.request import ArgumentError, build_request

BASE = "/api/v1"
TOKEN = "upstream-token-123"
P = BASE + "/items/"
API_KEY_AUTH = ApiKeyAuth(type="api_key", header="X-Api-Key", value=SecretStr("k-1"))

# (label, arguments, expected raw path+query | error fragment)
OK: list[tuple[str, dict[str, Any], str]] = [
    ("plain id", {"id": "42"}, P + "42"),
    ("slash becomes one encoded segment", {"id": "a/b"}, P + "a%2Fb"),
    ("query injection in a path value", {"id": "x?admin=1"}, P + "x%3Fadmin%3D1"),
    ("fragment in a path value", {"id": "x#frag"}, P + "x%23frag"),
    ("scheme-relative URL", {"id": "//evil.example/x"}, P + "%2F%2Fevil.example%2Fx"),
    ("absolute URL", {"id": "http://evil.example:80/"}, P + "http%3A%2F%2Fevil.example%3A80%2F"),
    ("at sign and userinfo", {"id": "user:pw@evil.example"}, P + "user%3Apw%40evil.example"),
    ("backslash", {"id": "a\\b"}, P + "a%5Cb"),
    ("space and pre-encoded text", {"id": "a b%20c"}, P + "a%20b%2520c"),
    ("CRLF in a path value", {"id": "x\r\nX-Injected: 1"}, P + "x%0D%0AX-Injected%3A%201"),
    ("NUL in a path value", {"id": "x\x00y"}, P + "x%00y"),
    ("pre-encoded NUL stays literal", {"id": "%00"}, P + "%2500"),
    ("three dots are a name, not traversal", {"id": "..."}, P + "..."),
    ("dots inside a name", {"id": "v1..2"}, P + "v1..2"),
    ("unicode", {"id": "ü/ø"}, P + "%C3%BC%2F%C3%B8"),
    ("ampersand in a query value", {"id": "1", "q": "a&admin=true"}, P + "1?q=a%26admin%3Dtrue"),
    ("hash in a query value", {"id": "1", "q": "#x"}, P + "1?q=%23x"),
    (
        "allowReserved keeps reserved but not & and #",
        {"id": "1", "filter": "a/b:c&d#e=f"},
        P + "1?filter=a/b:c%26d%23e=f",
    ),
    ("percent in allowReserved", {"id": "1", "filter": "%2e%2e"}, P + "1?filter=%252e%252e"),
]

ERR: list[tuple[str, dict[str, Any], str]] = [
    ("dot-dot", {"id": ".."}, "argument 'id' cannot be '.' or '..'"),
    ("dot", {"id": "."}, "argument 'id' cannot be '.' or '..'"),
    ("traversal with slash", {"id": "../admin"}, "argument 'id' cannot be"),
    ("traversal with backslash", {"id": "..\\admin"}, "argument 'id' cannot be"),
    ("encoded traversal lower", {"id": "%2e%2e"}, "argument 'id' cannot be"),
    ("encoded traversal upper", {"id": "%2E%2E%2Fadmin"}, "argument 'id' cannot be"),
    ("encoded slash traversal", {"id": "..%2fadmin"}, "argument 'id' cannot be"),
    ("double-encoded traversal", {"id": "%252e%252e"}, "argument 'id' cannot be"),
    ("mixed traversal", {"id": ".%2e/x"}, "argument 'id' cannot be"),
    ("fullwidth dots", {"id": "．．"}, "argument 'id' cannot be"),
    ("two-dot leader", {"id": "‥"}, "argument 'id' cannot be"),
    ("one-dot leader pair", {"id": "a/․․"}, "argument 'id' cannot be"),
    ("traversal inside an array", {"id": ["1", ".."]}, "argument 'id' cannot be"),
    ("empty path value", {"id": ""}, "argument 'id' must not be empty"),
    ("missing path value", {}, "missing required argument 'id'"),
    ("oversized path value", {"id": "x" * 20000}, "over the 16384 limit"),
    ("CRLF in a header", {"id": "1", "trace": "abc\r\nX-Evil: 1"}, "argument 'trace' contains a control character"),
    ("LF in a header", {"id": "1", "trace": "abc\nX-Evil: 1"}, "argument 'trace' contains a control character"),
    ("NUL in a header", {"id": "1", "trace": "abc\x00"}, "argument 'trace' contains a control character"),
    ("oversized header", {"id": "1", "trace": "a" * 9000}, "argument 'trace' is too long for a header"),
    ("Authorization header parameter", {"id": "1", "authorization": "Bearer evil"}, "'Authorization' header"),
    ("Host header parameter", {"id": "1", "host_header": "evil.example"}, "'Host' header"),
    ("Cookie header parameter", {"id": "1", "cookie_header": "sid=evil"}, "'Cookie' header"),
    ("Content-Length header parameter", {"id": "1", "length": "0"}, "'Content-Length' header"),
    ("Transfer-Encoding header parameter", {"id": "1", "te": "chunked"}, "'Transfer-Encoding' header"),
    ("Proxy-* header parameter", {"id": "1", "proxy_auth": "Basic x"}, "'Proxy-Authorization' header"),
    ("header the credentials set", {"id": "1", "api_key_header": "stolen"}, "'X-Api-Key' header"),
    ("header the workspace config sets", {"id": "1", "tenant": "other"}, "'X-Tenant' header"),
    ("CRLF in a cookie", {"id": "1", "session": "abc\r\nX-Evil: 1"}, "argument 'session' contains a control character"),
    ("oversized cookie", {"id": "1", "session": "a" * 5000}, "argument 'session' is too long for a cookie"),
]


async def _send(upstream, forwarder, tool, arguments, *, auth=None):
    auth = auth or BearerAuth(type="bearer", token=SecretStr(TOKEN))
    credentials = static_credentials(auth)
    request = build_request(
        tool,
        arguments,
        base_url=upstream.url + BASE,
        extra_headers={"X-Tenant": "acme"},
        protected_headers=credentials.protected_headers,
    )
    await credentials.apply(request.headers, None)
    response = await forwarder.send(request, timeout=5, max_bytes=2**20)
    assert getattr(response, "status", None) == 200, response
    return upstream.last


def _assert_configured(received) -> None:
    assert received.path.startswith(BASE + "/")
    assert received.header("Authorization") == [f"Bearer {TOKEN}"]
    assert len(received.header("Host")) == 1
    assert received.header("X-Tenant") == ["acme"]
    assert not received.header("X-Injected") and not received.header("X-Evil")


def _exact_headers(received, port: int, **extra: str) -> None:
    """Every header the upstream received, and nothing else (Accept-Encoding: whatever aiohttp can decode)."""
    expected = {
        "host": f"127.0.0.1:{port}",
        "user-agent": "castproxy",
        "accept": "application/json, */*;q=0.8",
        "authorization": f"Bearer {TOKEN}",
        "x-tenant": "acme",
        "content-length": "0",
    } | {name.lower().replace("_", "-"): value for name, value in extra.items()}
    got = [(name.lower(), value) for name, value in received.headers if name.lower() != "accept-encoding"]
    assert sorted(got) == sorted(expected.items())
    assert len(received.header("Accept-Encoding")) == 1


@pytest.mark.parametrize(("label", "arguments", "expected"), OK, ids=[row[0] for row in OK])
async def test_hostile_value_is_encoded(upstream, forwarder, label, arguments, expected):
    received = await _send(upstream, forwarder, ITEM_TOOL, arguments)
    assert received.raw_path == expected
    assert received.method == "POST"
    assert received.body == b""
    _exact_headers(received, int(upstream.url.rsplit(":", 1)[1]))


@pytest.mark.parametrize(("label", "arguments", "fragment"), ERR, ids=[row[0] for row in ERR])
async def test_hostile_value_is_refused(upstream, forwarder, label, arguments, fragment):
    with pytest.raises(ArgumentError) as caught:
        await _send(upstream, forwarder, ITEM_TOOL, arguments, auth=API_KEY_AUTH if "credentials" in label else None)
    assert any(fragment in message for message in caught.value.messages), caught.value.messages
    assert upstream.received == []


async def test_cookie_value_cannot_add_a_cookie(upstream, forwarder):
    received = await _send(upstream, forwarder, ITEM_TOOL, {"id": "1", "session": "abc; admin=1"})
    _exact_headers(received, int(upstream.url.rsplit(":", 1)[1]), Cookie="session=abc%3B%20admin=1")


async def test_top_level_argument_named_like_a_header_goes_nowhere(upstream, forwarder):
    arguments = {"id": "1", "Authorization": "Bearer evil", "Host": "evil.example", "X-Evil": "1"}
    received = await _send(upstream, forwarder, ITEM_TOOL, arguments)
    assert received.raw_path == P + "1"
    assert received.body == b""
    _assert_configured(received)


async def test_body_keys_cannot_smuggle_headers_or_extra_fields(upstream, forwarder):
    arguments = {"id": "1", "name": {"Authorization": "Bearer evil"}, "tags": ["a"], "admin": True}
    received = await _send(upstream, forwarder, ITEM_TOOL, arguments)
    assert json.loads(received.body) == {"name": {"Authorization": "Bearer evil"}, "tags": ["a"]}
    assert received.header("Content-Type") == ["application/json"]
    assert received.header("Content-Length") == [str(len(received.body))]
    _assert_configured(received)


async def test_form_keys_cannot_add_fields(upstream, forwarder):
    received = await _send(upstream, forwarder, FORM_TOOL, {"form": {"a&admin=1": "x=y&z", "b": ["1", "2"]}})
    assert received.body == b"a%26admin%3D1=x%3Dy%26z&b=1&b=2"
    _assert_configured(received)


async def test_multipart_names_cannot_break_out_of_the_part(upstream, forwarder):
    name = 'evil"\r\nContent-Type: text/html\r\n\r\nX'
    received = await _send(upstream, forwarder, MULTIPART_OBJECT_TOOL, {"fields": {name: "v"}})
    body = received.body.decode()
    assert 'name="evil%22%0D%0AContent-Type: text/html%0D%0A%0D%0AX"' in body
    assert "\r\nContent-Type: text/html\r\n" not in body
    _assert_configured(received)


async def test_api_key_credentials_replace_any_case_variant(upstream, forwarder):
    received = await _send(upstream, forwarder, ITEM_TOOL, {"id": "1"}, auth=API_KEY_AUTH)
    assert received.header("X-Api-Key") == ["k-1"]
    assert received.header("Authorization") == []


async def test_header_and_cookie_parameters_arrive_exactly(upstream, forwarder):
    arguments = {"id": "1", "trace": "abc def ü", "session": "s-1"}
    received = await _send(upstream, forwarder, ITEM_TOOL, arguments)
    port = int(upstream.url.rsplit(":", 1)[1])
    _exact_headers(received, port, X_Trace="abc def ü".encode().decode("latin-1"), Cookie="session=s-1")
