"""Plain answers to what the stateless JSON endpoint does not serve: GET, JSON-RPC batches, unknown protocol versions.

Each is checked with the fast path on and off (the answers come from the endpoint in front of both)."""

from __future__ import annotations

import json

import httpx2
import pytest
from serve_support import MODERN
from support import web

from castproxy.serve.fastpath import ENV_SWITCH

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


@pytest.fixture(params=["on", "off"], ids=["fast-path", "sdk-only"])
def proxy(request, start_proxy, monkeypatch):
    monkeypatch.setenv(ENV_SWITCH, request.param)
    return start_proxy({"open": "", "keyed": "    inbound: {api_keys: [k1]}"})


@pytest.mark.parametrize("version", [None, "2025-11-25", MODERN])
def test_get_is_405_allow_post_not_an_idle_stream(proxy, version):
    headers = {"Accept": "text/event-stream"} | ({"MCP-Protocol-Version": version} if version else {})
    # Before: an SSE stream that stays open and never carries anything (this read would time out).
    answer = web.get(proxy.mcp("open"), headers=headers, timeout=5)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


def test_delete_is_405_allow_post(proxy):
    answer = httpx2.delete(proxy.mcp("open"), headers={"MCP-Protocol-Version": "2025-11-25"}, timeout=5)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"  # not "GET, POST, DELETE": GET is refused too


def test_get_without_the_inbound_key_is_still_401(proxy):
    answer = web.get(proxy.mcp("keyed"), headers={"Accept": "text/event-stream"}, timeout=5)
    assert answer.status_code == 401


@pytest.mark.parametrize("version", ["2025-11-25", MODERN])
@pytest.mark.parametrize("body", [b"[" + json.dumps(LIST).encode() + b"]", b"  \n[]"], ids=["two-element", "empty"])
def test_batch_is_a_short_400_json_rpc_error(proxy, version, body):
    answer = web.post(proxy.mcp("open"), headers={**ACCEPT, "MCP-Protocol-Version": version}, content=body)
    assert answer.status_code == 400
    assert answer.json() == {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32600,
        "message": "JSON-RPC batches are not supported: send one request or notification object per POST"}}
    assert "pydantic" not in answer.text


def test_a_body_merely_starting_with_a_bracket_is_left_to_the_sdk(proxy):
    answer = web.post(proxy.mcp("open"), headers={**ACCEPT, "MCP-Protocol-Version": "2025-11-25"}, content=b"[1,")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == -32700  # parse error


def test_unsupported_protocol_version_is_named_with_the_supported_ones(proxy):
    answer = web.post(proxy.mcp("open"), headers={**ACCEPT, "MCP-Protocol-Version": "1999-01-01"}, json=LIST)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["message"] == ("Unsupported MCP-Protocol-Version '1999-01-01'; "
                                "supported: 2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25, 2026-07-28")
    assert error["data"] == {"supported": ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"],
                             "requested": "1999-01-01"}


def test_ordinary_calls_still_work(proxy):
    for version in ("2025-11-25", None):
        headers = {**ACCEPT} | ({"MCP-Protocol-Version": version} if version else {})
        answer = web.post(proxy.mcp("open"), headers=headers, json=LIST)
        assert answer.status_code == 200 and answer.json()["result"]["tools"]
