"""Parameter serialisation for every OpenAPI style/explode combination, and request bodies by content type."""

from __future__ import annotations

import base64
import json
from email.parser import BytesParser
from email.policy import HTTP

import pytest
from support.tool_definitions import FORM_TOOL, MULTIPART_OBJECT_TOOL, MULTIPART_TOOL, cookie, header, path, query, tool

from castproxy.openapi.model import BodySpec
from castproxy.upstream.request import ArgumentError, build_request

BASE = "http://up.example:8000/base"
PRIMITIVE = 5
ARRAY = [3, 4, 5]
OBJECT = {"role": "admin", "firstName": "Alex"}

# (style, explode, value, expected path after /x/) — the examples of the OpenAPI specification
PATH_CASES = [
    ("simple", False, PRIMITIVE, "5"),
    ("simple", False, ARRAY, "3,4,5"),
    ("simple", False, OBJECT, "role,admin,firstName,Alex"),
    ("simple", True, PRIMITIVE, "5"),
    ("simple", True, ARRAY, "3,4,5"),
    ("simple", True, OBJECT, "role=admin,firstName=Alex"),
    ("label", False, PRIMITIVE, ".5"),
    ("label", False, ARRAY, ".3,4,5"),
    ("label", False, OBJECT, ".role,admin,firstName,Alex"),
    ("label", True, PRIMITIVE, ".5"),
    ("label", True, ARRAY, ".3.4.5"),
    ("label", True, OBJECT, ".role=admin.firstName=Alex"),
    ("matrix", False, PRIMITIVE, ";id=5"),
    ("matrix", False, ARRAY, ";id=3,4,5"),
    ("matrix", False, OBJECT, ";id=role,admin,firstName,Alex"),
    ("matrix", True, PRIMITIVE, ";id=5"),
    ("matrix", True, ARRAY, ";id=3;id=4;id=5"),
    ("matrix", True, OBJECT, ";role=admin;firstName=Alex"),
    ("simple", False, "a,b c", "a%2Cb%20c"),
    ("simple", False, True, "true"),
    ("simple", False, 2.5, "2.5"),
]

QUERY_CASES = [
    ("form", True, PRIMITIVE, "id=5"),
    ("form", True, ARRAY, "id=3&id=4&id=5"),
    ("form", True, OBJECT, "role=admin&firstName=Alex"),
    ("form", False, PRIMITIVE, "id=5"),
    ("form", False, ARRAY, "id=3,4,5"),
    ("form", False, OBJECT, "id=role,admin,firstName,Alex"),
    ("spaceDelimited", False, ARRAY, "id=3%204%205"),
    ("spaceDelimited", False, OBJECT, "id=role%20admin%20firstName%20Alex"),
    ("spaceDelimited", True, ARRAY, "id=3&id=4&id=5"),
    ("pipeDelimited", False, ARRAY, "id=3%7C4%7C5"),
    ("pipeDelimited", False, OBJECT, "id=role%7Cadmin%7CfirstName%7CAlex"),
    ("pipeDelimited", True, ARRAY, "id=3&id=4&id=5"),
    ("deepObject", True, OBJECT, "id%5Brole%5D=admin&id%5BfirstName%5D=Alex"),
    ("deepObject", True, {"a": {"b": 1}, "c": [1, 2]}, "id%5Ba%5D%5Bb%5D=1&id%5Bc%5D=1&id%5Bc%5D=2"),
    ("form", True, "a b&c=d", "id=a%20b%26c%3Dd"),
    ("form", True, False, "id=false"),
    ("form", False, ["a,b", "c"], "id=a%2Cb,c"),
    ("pipeDelimited", False, ["a|b", "c"], "id=a%7Cb%7Cc"),
]

HEADER_CASES = [
    (False, PRIMITIVE, "5"),
    (False, ARRAY, "3,4,5"),
    (False, OBJECT, "role,admin,firstName,Alex"),
    (True, ARRAY, "3,4,5"),
    (True, OBJECT, "role=admin,firstName=Alex"),
]

COOKIE_CASES = [
    (True, PRIMITIVE, "id=5"),
    (False, PRIMITIVE, "id=5"),
    (True, ARRAY, "id=3; id=4; id=5"),
    (False, ARRAY, "id=3,4,5"),
    (True, OBJECT, "role=admin; firstName=Alex"),
    (False, OBJECT, "id=role,admin,firstName,Alex"),
    (True, "a b;c", "id=a%20b%3Bc"),
]


@pytest.mark.parametrize(("style", "explode", "value", "expected"), PATH_CASES)
def test_path_styles(style, explode, value, expected):
    request = build_request(tool("/x/{id}", path("id", style=style, explode=explode)), {"id": value}, base_url=BASE)
    assert request.url == f"{BASE}/x/{expected}"


@pytest.mark.parametrize(("style", "explode", "value", "expected"), QUERY_CASES)
def test_query_styles(style, explode, value, expected):
    request = build_request(tool("/x", query("id", style=style, explode=explode)), {"id": value}, base_url=BASE)
    assert request.url == f"{BASE}/x?{expected}"


@pytest.mark.parametrize(("explode", "value", "expected"), HEADER_CASES)
def test_header_simple_style(explode, value, expected):
    request = build_request(tool("/x", header("X-Id", "id", explode=explode)), {"id": value}, base_url=BASE)
    assert request.headers["X-Id"] == expected


@pytest.mark.parametrize(("explode", "value", "expected"), COOKIE_CASES)
def test_cookie_form_style(explode, value, expected):
    request = build_request(tool("/x", cookie("id", explode=explode)), {"id": value}, base_url=BASE)
    assert request.headers["Cookie"] == expected


def test_cookie_object_keys_must_be_cookie_names():
    with pytest.raises(ArgumentError, match="not a valid cookie name"):
        build_request(tool("/x", cookie("id", explode=True)), {"id": {"a;b": "1"}}, base_url=BASE)


def test_absent_and_null_optional_parameters_are_left_out():
    spec = tool("/x", query("a"), query("b"), query("c"), header("X-D", "d"))
    request = build_request(spec, {"a": None, "b": [], "c": {}}, base_url=BASE)
    assert request.url == f"{BASE}/x"
    assert "X-D" not in request.headers


def test_content_parameter_is_json_text():
    spec = tool("/x", query("filter", content_type="application/json"))
    request = build_request(spec, {"filter": {"a": [1, "b"]}}, base_url=BASE)
    assert request.url == f"{BASE}/x?filter=%7B%22a%22%3A%5B1%2C%22b%22%5D%7D"


def test_base_url_with_trailing_slash_and_query_is_kept():
    request = build_request(tool("/x", query("a")), {"a": 1}, base_url="https://h.example/v2/?key=k")
    assert request.url == "https://h.example/v2/x?key=k&a=1"


def test_defaults_accept_json_and_keeps_extra_headers():
    request = build_request(tool("/x"), {}, base_url=BASE, extra_headers={"X-Tenant": "acme", "Host": "evil"})
    assert request.headers == {"X-Tenant": "acme", "Accept": "application/json, */*;q=0.8"}


def test_extra_headers_never_override_auth_headers():
    request = build_request(
        tool("/x"),
        {},
        base_url=BASE,
        extra_headers={"authorization": "x"},
        protected_headers=frozenset({"authorization"}),
    )
    assert "authorization" not in request.headers


def test_cookie_parameters_join_a_configured_cookie_header():
    request = build_request(tool("/x", cookie("a")), {"a": "1"}, base_url=BASE, extra_headers={"Cookie": "site=x"})
    assert request.headers["Cookie"] == "site=x; a=1"


@pytest.mark.parametrize("method", ["TRACE", "CONNECT"])
def test_methods_that_echo_or_tunnel_are_refused(method):
    with pytest.raises(ArgumentError, match="not forwarded"):
        build_request(tool("/x", method=method), {}, base_url=BASE)


def test_several_problems_are_reported_together():
    spec = tool("/x/{a}/{b}", path("a"), path("b"), header("X-T", "t"))
    with pytest.raises(ArgumentError) as caught:
        build_request(spec, {"a": "..", "t": "x\ny"}, base_url=BASE)
    messages = caught.value.messages
    assert any("argument 'a'" in m for m in messages)
    assert "missing required argument 'b'" in messages
    assert any("argument 't'" in m for m in messages)


def test_the_assembled_path_is_checked_for_dot_segments_too():
    # Values are checked one by one; the whole path is checked again (here a template escaping its base).
    with pytest.raises(ArgumentError, match=r"'\.' or '\.\.' path segment"):
        build_request(tool("/x/{a}/%2e%2e/y", path("a")), {"a": "1"}, base_url=BASE)


# ---- bodies ----------------------------------------------------------------------------------------


def _multipart(request) -> list:
    content_type = request.headers["Content-Type"]
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + request.body)
    return list(message.iter_parts())


def test_json_body_from_properties_and_whole_argument():
    spec = tool(
        "/x", method="POST", body=BodySpec(content_type="application/json", properties=(("item_name", "name"),))
    )
    request = build_request(spec, {"item_name": "ü"}, base_url=BASE)
    assert request.body == '{"name":"ü"}'.encode()
    assert request.headers["Content-Type"] == "application/json"

    whole = tool("/x", method="PUT", body=BodySpec(content_type="application/merge-patch+json", argument="body"))
    request = build_request(whole, {"body": [1, {"a": None}]}, base_url=BASE)
    assert json.loads(request.body) == [1, {"a": None}]
    assert request.method == "PUT"


def test_optional_body_absent_sends_nothing():
    spec = tool("/x", method="POST", body=BodySpec(content_type="application/json", argument="body"))
    request = build_request(spec, {}, base_url=BASE)
    assert request.body is None and "Content-Type" not in request.headers


def test_required_body_missing_is_an_argument_error():
    spec = tool("/x", method="POST", body=BodySpec(content_type="application/json", argument="body", required=True))
    with pytest.raises(ArgumentError, match="missing required argument 'body'"):
        build_request(spec, {}, base_url=BASE)


def test_form_body():
    request = build_request(FORM_TOOL, {"form": {"q": "a b", "n": 3, "ok": True, "skip": None}}, base_url=BASE)
    assert request.body == b"q=a+b&n=3&ok=true"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_multipart_binary_part_is_decoded():
    png = b"\x89PNG\r\n\x1a\n\x00binary"
    arguments = {"file": base64.b64encode(png).decode(), "note": "hello", "meta": {"a": 1}}
    request = build_request(MULTIPART_TOOL, arguments, base_url=BASE)
    file_part, note_part, meta_part = _multipart(request)
    assert file_part.get_param("name", header="content-disposition") == "file"
    assert file_part.get_content_type() == "image/png"
    assert file_part.get_payload(decode=True) == png
    assert note_part.get_payload(decode=True) == b"hello"
    assert meta_part.get_content_type() == "application/json"
    assert json.loads(meta_part.get_payload(decode=True)) == {"a": 1}


def test_multipart_accepts_urlsafe_unpadded_base64():
    data = bytes(range(250, 256)) * 3
    encoded = base64.urlsafe_b64encode(data).decode().rstrip("=")
    request = build_request(MULTIPART_TOOL, {"file": encoded}, base_url=BASE)
    assert _multipart(request)[0].get_payload(decode=True) == data


def test_multipart_bad_base64_names_the_argument():
    with pytest.raises(ArgumentError) as caught:
        build_request(MULTIPART_TOOL, {"file": "not base64 at all!!"}, base_url=BASE)
    assert caught.value.messages == ["argument 'file' is not valid base64"]


def test_multipart_whole_object_repeats_array_fields():
    request = build_request(MULTIPART_OBJECT_TOOL, {"fields": {"tag": ["a", "b"]}}, base_url=BASE)
    parts = _multipart(request)
    assert [p.get_payload(decode=True) for p in parts] == [b"a", b"b"]


def test_text_plain_body_gets_a_charset():
    spec = tool("/x", method="POST", body=BodySpec(content_type="text/plain", argument="text"))
    request = build_request(spec, {"text": "héllo"}, base_url=BASE)
    assert request.body == "héllo".encode()
    assert request.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_octet_stream_body_is_base64_decoded():
    spec = tool(
        "/x", method="PUT", body=BodySpec(content_type="application/octet-stream", argument="data", binary=True)
    )
    request = build_request(spec, {"data": base64.b64encode(b"\x00\xffraw").decode()}, base_url=BASE)
    assert request.body == b"\x00\xffraw"
    assert request.headers["Content-Type"] == "application/octet-stream"
    with pytest.raises(ArgumentError, match="argument 'data' is not valid base64"):
        build_request(spec, {"data": "@@@"}, base_url=BASE)
    with pytest.raises(ArgumentError, match="argument 'data' must be base64-encoded text"):
        build_request(spec, {"data": 12}, base_url=BASE)
