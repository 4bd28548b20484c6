"""What stands in front of the MCP server: Origin, workspace lookup, sign-in, health and metrics."""

from __future__ import annotations

import importlib.util

import httpx2
import pytest
from mcp.shared.exceptions import MCPError
from prometheus_client.parser import text_string_to_metric_families
from serve_support import MODERN, mcp_client
from support import web

from castproxy.access.build import hash_key
from castproxy.origins import OriginPolicy, normalize_origin
from castproxy.serve.inbound import key_accepted, presented_key

LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
ACCEPT = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),
        ("http://localhost:5173", True),
        ("http://127.0.0.1", True),
        ("https://127.9.9.9:8443", True),
        ("http://[::1]:3000", True),
        ("https://app.example.com", True),  # allowed_origins
        ("HTTPS://APP.EXAMPLE.COM:443", True),  # same origin, other spelling
        ("https://proxy.example.org", True),  # public_url
        ("https://evil.example.net", False),
        ("http://app.example.com", False),  # other scheme
        ("https://app.example.com:8443", False),  # other port
        ("http://localhost.evil.net", False),
        ("null", False),
        ("file://", False),
    ],
)
def test_origin_policy(origin, allowed):
    policy = OriginPolicy.from_settings("https://proxy.example.org/base", ["https://app.example.com"])
    assert policy.allows(origin) is allowed


def test_normalize_origin():
    assert normalize_origin("https://Example.COM:443/") == "https://example.com"
    assert normalize_origin("http://example.com:8080") == "http://example.com:8080"
    assert normalize_origin("ftp://example.com") is None


@pytest.mark.parametrize(
    ("headers", "accepted"),
    [
        ({"authorization": "Bearer k1"}, True),
        ({"authorization": "bearer   k2 "}, True),
        ({"x-api-key": "k1"}, True),
        ({"authorization": "Basic k1"}, False),
        ({"authorization": "Bearer k3"}, False),
        ({"x-api-key": "k"}, False),
        ({}, False),
    ],
)
def test_inbound_keys(headers, accepted):
    assert key_accepted(headers, (hash_key("k1"), hash_key("k2"))) is accepted


def test_presented_key_prefers_authorization():
    assert presented_key({"authorization": "Bearer a", "x-api-key": "b"}) == "a"


async def test_unknown_workspace_is_404(start_proxy):
    proxy = start_proxy({"open": ""})
    response = web.post(proxy.mcp("nope"), json=LIST, headers=ACCEPT)
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_workspace"


async def test_foreign_origin_is_403_and_allowed_ones_pass(start_proxy):
    proxy = start_proxy({"open": ""}, extra_server="  allowed_origins: [https://app.example.com]\n")
    foreign = web.post(proxy.mcp("open"), json=LIST, headers={**ACCEPT, "Origin": "https://evil.example.net"})
    assert foreign.status_code == 403
    # A foreign page cannot even learn which workspaces exist.
    assert web.post(proxy.mcp("nope"), json=LIST, headers={**ACCEPT, "Origin": "https://evil.example.net"}
                    ).status_code == 403
    for origin in ("https://app.example.com", "http://localhost:3000", proxy.url):
        async with mcp_client(proxy.mcp("open"), MODERN, {"Origin": origin}) as client:
            assert (await client.list_tools()).tools


async def test_cors_for_allowed_browser_origins(start_proxy):
    proxy = start_proxy({"open": "", "keyed": "    inbound: {api_keys: [k1]}"},
                        extra_server="  allowed_origins: [https://app.example.com]\n")
    app_origin = {"Origin": "https://app.example.com"}
    preflight = httpx2.options(proxy.mcp("open"), headers={
        **app_origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, mcp-protocol-version, mcp-param-region"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "mcp-param-region" in preflight.headers["access-control-allow-headers"]
    assert httpx2.options(proxy.mcp("open"), headers={"Origin": "https://evil.example.net"}).status_code == 403
    answer = web.post(proxy.mcp("open"), json=LIST, headers={**ACCEPT, **app_origin})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "https://app.example.com"
    refused = web.post(proxy.mcp("keyed"), json=LIST, headers={**ACCEPT, **app_origin})
    assert refused.status_code == 401  # readable by the page, so it can ask for a key
    assert refused.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "access-control-allow-origin" not in web.post(proxy.mcp("open"), json=LIST, headers=ACCEPT).headers


async def test_sign_in_workspace_without_authorization_server(start_proxy, monkeypatch):
    monkeypatch.setenv("CASTPROXY_SECRET_KEY", "x" * 40)
    oauth = (
        "    auth: {type: oauth2, grant: authorization_code, client_id: c, client_secret: s,\n"
        "           authorization_url: 'http://127.0.0.1:9/authorize', token_url: 'http://127.0.0.1:9/token'}"
    )
    proxy = start_proxy({"signed": oauth}, extra_server="  secret_key: ${env:CASTPROXY_SECRET_KEY}\n")
    response = web.post(proxy.mcp("signed"), json=LIST, headers=ACCEPT)
    if importlib.util.find_spec("castproxy.auth.bridge") is None:
        assert response.status_code == 503
        assert "sign-in not available" in response.json()["message"]
    else:
        assert response.status_code == 401
        assert "resource_metadata=" in response.headers["www-authenticate"]


async def test_health_and_metrics(start_proxy):
    proxy = start_proxy({"open": ""})
    assert web.get(f"{proxy.url}/healthz").json() == {"status": "ok"}
    ready = web.get(f"{proxy.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["config"]["workspaces"] == ["open"]
    assert ready.json()["store"] == {"backend": "sqlite", "reachable": True}
    async with mcp_client(proxy.mcp("open"), MODERN) as client:
        await client.call_tool("getItem", {"id": "1"})
        await client.call_tool("getItem", {})
        await client.call_tool("failHard", {})
        with pytest.raises(MCPError):  # an unknown tool is a protocol error, still counted (one shared label)
            await client.call_tool("dropTables", {})
    metrics = web.get(f"{proxy.url}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(metrics.text) for s in family.samples}

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted(labels.items()))))

    assert value("castproxy_tool_calls_total", workspace="open", tool="getItem", outcome="ok") == 1
    assert value("castproxy_tool_calls_total", workspace="open", tool="getItem", outcome="invalid_arguments") == 1
    assert value("castproxy_tool_calls_total", workspace="open", tool="failHard", outcome="upstream_error") == 1
    assert value("castproxy_tool_calls_total", workspace="open", tool="(unknown)", outcome="unknown_tool") == 1
    assert value("castproxy_tool_call_duration_seconds_count", workspace="open", tool="getItem") == 2
    assert value("castproxy_config_reloads_total", outcome="ok") == 0


async def test_unreachable_store_makes_the_proxy_unready(start_proxy):
    proxy = start_proxy({"open": ""})
    state = proxy.app.state.serve
    real = state.store

    class Down:  # a store whose backend stopped answering (Redis gone, disk unmounted)
        async def ping(self) -> bool:
            raise ConnectionError("connection refused")

    state.store = Down()
    try:
        ready = web.get(f"{proxy.url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unready" and ready.json()["store"]["reachable"] is False
        assert web.get(f"{proxy.url}/healthz").status_code == 200
    finally:
        state.store = real
