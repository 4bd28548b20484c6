"""The forwarder against a real upstream, and how each outcome becomes an MCP tool result."""

from __future__ import annotations

import asyncio
import base64
import json

from castproxy.upstream.model import UpstreamFailure, UpstreamRequest, UpstreamResponse
from castproxy.upstream.response import to_tool_result

CAP = 2**20


async def call(upstream, forwarder, kind: str, *, timeout: float = 5, max_bytes: int = CAP, method: str = "GET"):
    request = UpstreamRequest(method=method, url=f"{upstream.url}/r/{kind}", headers={"Accept": "*/*"})
    outcome = await forwarder.send(request, timeout=timeout, max_bytes=max_bytes)
    return outcome, to_tool_result(outcome, max_bytes=max_bytes)


def wire(result) -> dict:
    """The result as a client receives it (camelCase JSON)."""
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


async def test_json_object_becomes_structured_content(upstream, forwarder):
    _, result = await call(upstream, forwarder, "object")
    assert wire(result) == {
        "content": [{"type": "text", "text": '{"id": 7, "name": "widget"}'}],
        "structuredContent": {"id": 7, "name": "widget"},
        "isError": False,
        "resultType": "complete",
    }


async def test_json_array_and_scalar_are_wrapped(upstream, forwarder):
    _, result = await call(upstream, forwarder, "array")
    assert result.structured_content == {"result": [{"id": 1}, {"id": 2}]}
    assert json.loads(result.content[0].text) == [{"id": 1}, {"id": 2}]
    _, result = await call(upstream, forwarder, "scalar")
    assert result.structured_content == {"result": 42}
    assert not result.is_error


async def test_json_suffix_types_are_json(upstream, forwarder):
    _, result = await call(upstream, forwarder, "problem-json")
    assert result.structured_content == {"ok": 1}


async def test_invalid_json_is_returned_as_text(upstream, forwarder):
    _, result = await call(upstream, forwarder, "bad-json")
    assert result.structured_content is None and result.content[0].text == "{not json"
    assert not result.is_error


async def test_text_and_charset(upstream, forwarder):
    _, result = await call(upstream, forwarder, "text")
    assert [c.text for c in result.content] == ["plain words ü"]
    assert result.structured_content is None
    _, result = await call(upstream, forwarder, "latin1")
    assert result.content[0].text == "café"


async def test_binary_becomes_an_embedded_resource(upstream, forwarder):
    _, result = await call(upstream, forwarder, "binary")
    (block,) = result.content
    assert block.type == "resource"
    assert block.resource.mime_type == "application/pdf"
    assert base64.b64decode(block.resource.blob) == bytes(range(256))
    assert block.resource.uri == f"{upstream.url}/r/binary"


async def test_empty_2xx(upstream, forwarder):
    _, result = await call(upstream, forwarder, "empty")
    assert not result.is_error
    assert result.content[0].text == "Upstream answered 204 No Content with no body."


async def test_text_over_the_cap_is_cut_with_a_note(upstream, forwarder):
    outcome, result = await call(upstream, forwarder, "big-text", max_bytes=1024)
    assert outcome.truncated and len(outcome.body) == 1024
    assert result.content[0].text == "x" * 1024
    assert "cut" in result.content[1].text and "1024 bytes" in result.content[1].text
    assert not result.is_error


async def test_json_over_the_cap_is_text_with_a_note(upstream, forwarder):
    _, result = await call(upstream, forwarder, "big-json", max_bytes=2048)
    assert result.structured_content is None
    assert len(result.content[0].text) == 2048
    assert "response cut" in result.content[1].text


async def test_binary_over_the_cap_is_cut(upstream, forwarder):
    _, result = await call(upstream, forwarder, "big-binary", max_bytes=1024)
    assert len(base64.b64decode(result.content[0].resource.blob)) == 1024
    assert "response cut" in result.content[1].text


async def test_compressed_body_is_capped_after_decompression(upstream, forwarder):
    outcome, _ = await call(upstream, forwarder, "gzip-bomb", max_bytes=4096)
    assert outcome.truncated and outcome.body == b"0" * 4096
    assert "content-encoding" not in outcome.headers


async def test_404_names_status_and_shows_the_body(upstream, forwarder):
    _, result = await call(upstream, forwarder, "not-found")
    assert result.is_error
    assert result.content[0].text == 'Upstream answered 404 Not Found: {"error": "item 9 does not exist"}'


async def test_500_body_excerpt_is_short(upstream, forwarder):
    _, result = await call(upstream, forwarder, "server-error")
    text = result.content[0].text
    assert result.is_error and text.startswith("Upstream answered 500 Internal Server Error: database exploded")
    assert len(text) < 600 and text.endswith("…")


async def test_error_without_body(upstream, forwarder):
    _, result = await call(upstream, forwarder, "teapot-empty")
    assert result.is_error and result.content[0].text == "Upstream answered 503 Service Unavailable"


async def test_redirect_is_not_followed(upstream, forwarder):
    outcome, result = await call(upstream, forwarder, "redirect")
    assert outcome.status == 302
    assert len(upstream.received) == 1
    assert result.is_error
    assert "302 Found (redirects are not followed; Location: http://evil.example/steal)" in result.content[0].text


async def test_set_cookie_and_hop_by_hop_headers_are_dropped_and_never_sent_back(upstream, forwarder):
    outcome, _ = await call(upstream, forwarder, "cookies")
    assert outcome.headers["x-custom"] == "kept"
    assert "set-cookie" not in outcome.headers and "keep-alive" not in outcome.headers
    await call(upstream, forwarder, "object")
    assert upstream.last.header("Cookie") == []  # the shared session keeps no cookie jar


async def test_timeout_against_a_sleeping_upstream(upstream, forwarder):
    outcome, result = await call(upstream, forwarder, "sleep?s=3", timeout=0.2)
    assert isinstance(outcome, UpstreamFailure) and outcome.kind == "timeout"
    assert outcome.elapsed < 2
    assert result.is_error
    host = upstream.url.removeprefix("http://")
    assert result.content[0].text == f"Upstream request failed: the upstream {host} did not answer within 0.2 s."


async def test_connection_refused(forwarder, closed_port):
    request = UpstreamRequest(method="GET", url=f"http://127.0.0.1:{closed_port}/x")
    outcome = await forwarder.send(request, timeout=5, max_bytes=CAP)
    assert isinstance(outcome, UpstreamFailure) and outcome.kind == "connect"
    result = to_tool_result(outcome, max_bytes=CAP)
    assert result.is_error
    assert result.content[0].text == (
        f"Upstream request failed: could not connect to the upstream 127.0.0.1:{closed_port} (connection refused)."
    )
    assert "Traceback" not in result.content[0].text


async def test_dns_failure(forwarder):
    outcome = await forwarder.send(UpstreamRequest("GET", "http://no-such-host.invalid/x"), timeout=5, max_bytes=CAP)
    assert isinstance(outcome, UpstreamFailure) and outcome.kind in ("dns", "connect")
    assert "no-such-host.invalid" in outcome.message


async def test_connection_reset(upstream, forwarder):
    outcome, result = await call(upstream, forwarder, "reset")
    assert isinstance(outcome, UpstreamFailure) and outcome.kind == "reset"
    text = result.content[0].text
    assert result.is_error and "connection to the upstream" in text and "dropped" in text


async def test_tls_failure_against_a_plain_http_port(upstream, forwarder):
    url = upstream.url.replace("http://", "https://") + "/x"
    outcome = await forwarder.send(UpstreamRequest("GET", url), timeout=5, max_bytes=CAP)
    assert isinstance(outcome, UpstreamFailure) and outcome.kind in ("tls", "reset", "protocol", "connect")


async def test_request_goes_out_byte_exact(upstream, forwarder):
    request = UpstreamRequest(
        method="PATCH",
        url=f"{upstream.url}/a/%2E%2E/b%2Fc?x=%7C|&y",
        headers={"Content-Type": "application/json", "X-One": "1"},
        body=b'{"a":1}',
    )
    outcome = await forwarder.send(request, timeout=5, max_bytes=CAP)
    assert isinstance(outcome, UpstreamResponse) and outcome.status == 200
    received = upstream.last
    assert received.method == "PATCH"
    assert received.raw_path == "/a/%2E%2E/b%2Fc?x=%7C|&y"  # not normalised by yarl
    assert received.body == b'{"a":1}'
    assert received.header("User-Agent") == ["castproxy"]
    assert received.header("X-One") == ["1"]


async def test_connections_are_kept_alive_and_reused(upstream, forwarder):
    for _ in range(5):
        await call(upstream, forwarder, "object")
    assert len({received.peer for received in upstream.received}) == 1
    await asyncio.gather(*(call(upstream, forwarder, "sleep?s=0.05") for _ in range(4)))
    assert len({received.peer for received in upstream.received}) == 4  # concurrent calls open more


async def test_send_before_start_starts_the_session(upstream):
    from castproxy.upstream.forwarder import Forwarder

    lazy = Forwarder()
    try:
        outcome = await lazy.send(UpstreamRequest("GET", upstream.url + "/x"), timeout=5, max_bytes=CAP)
        assert outcome.status == 200
    finally:
        await lazy.close()


def test_binary_resource_uri_carries_no_credential() -> None:
    """A base URL taken from the spec's servers may hold user:password@ or a key in its query."""
    response = UpstreamResponse(
        status=200,
        reason="OK",
        headers={"content-type": "image/png"},
        body=b"\x89PNG\r\n",
        truncated=False,
        url="https://user:s3cret@api.example.com:8443/v1/files/7?api_key=k3y#x",
        elapsed=0.01,
    )
    (block,) = to_tool_result(response, max_bytes=1024).content
    assert block.resource.uri == "https://api.example.com:8443/v1/files/7"
