"""The audit trail end to end: every event kind recorded, and no secret in any sink.

castproxy runs in front of the bundled test upstream (oauth mode) with the `mcp` SDK client signing in.
The test plants known secrets (canaries) everywhere a secret can be: the upstream client secret, the
server's secret key, an admin key, an inbound API key, a tool argument value, and then collects the
tokens that were really issued (castproxy's and the upstream's). It drives one of each event: consent,
sign-in, tool calls (signed in, and with an inbound key), sign-out, token refresh failure, revocation
(upstream grant gone, and ended by an admin), reloads (good and bad) and lock drift. Then it greps
every sink: the stdout or file trail (rotated files included), the admin pages, /metrics.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from oauth_e2e_support import SECRET_KEY, start_oauth_upstream, write_config
from support import admin
from support.metrics import parse, scrape, value
from support.net import free_socket
from support.oauth_client import Browser, MemoryStorage, mcp_session
from support.recording import RecordedUpstream
from support.servers import Running, run

from castproxy.cli import main as castproxy_main
from castproxy.serve.app import create_app

CLIENT_SECRET = "audit-canary-client-secret-5f1e0c2a9d"
ADMIN_KEY = "audit-canary-admin-key-7b3d19e4c6"
INBOUND_KEY = "audit-canary-inbound-key-2c8a51f0b7"
ARGUMENT = "audit-canary-argument-value-9e4f27"
EVENTS = {"tool_call", "consent", "sign_in", "sign_out", "revocation", "token_refresh_failed", "reload", "lock_drift"}

KEYED = """  keyed:
    openapi: {upstream}/openapi.json
    base_url: {upstream}
    inbound: {{api_keys: ["${{env:AUDIT_INBOUND_KEY}}"]}}
    tools: [listItems]
"""


def sink_settings(kind: str) -> str:
    if kind == "file":  # small files, so the trail rotates while the test runs
        return "  audit: {sink: file, path: ./audit/trail.jsonl, max_bytes: 4096, backups: 50}\n"
    return "  audit: {sink: stdout}\n"


class Stack:
    def __init__(self, folder: Path, kind: str) -> None:
        sock = free_socket()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.upstream: RecordedUpstream = start_oauth_upstream([self.url], CLIENT_SECRET)
        self.config = write_config(folder, self.url, self.upstream.url)
        text = self.config.read_text().replace(
            "  secret_key: ${env:E2E_SECRET_KEY}\n",
            "  secret_key: ${env:E2E_SECRET_KEY}\n" + sink_settings(kind)
            + '  admin: {api_keys: ["${env:AUDIT_ADMIN_KEY}"]}\n',
        ).replace("  items:\n", "  items:\n    audit: {argument_names: true}\n")
        self.config.write_text(text + KEYED.format(upstream=self.upstream.url))
        self.app = create_app(self.config, reload=True)
        self.proxy: Running = run(self.app, sock)
        self.folder = folder

    def stop(self) -> None:
        self.proxy.stop()  # the lifespan's end flushes and closes the audit trail
        self.upstream.stop()

    def file_trail(self) -> str:
        return "".join(path.read_text() for path in sorted((self.folder / "audit").glob("trail.jsonl*")))


@pytest.fixture(params=["stdout", "file"])
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Stack]:
    for name, secret in (("E2E_CLIENT_SECRET", CLIENT_SECRET), ("E2E_SECRET_KEY", SECRET_KEY),
                         ("AUDIT_ADMIN_KEY", ADMIN_KEY), ("AUDIT_INBOUND_KEY", INBOUND_KEY)):
        monkeypatch.setenv(name, secret)
    monkeypatch.delenv("CASTPROXY_CONFIG", raising=False)
    running = Stack(tmp_path, request.param)
    yield running
    running.stop()


async def wait_for_reloads(stack: Stack, outcome: str, count: int) -> None:
    deadline = asyncio.get_running_loop().time() + 20
    while value(scrape(stack.url), "castproxy_config_reloads_total", outcome=outcome) != count:
        assert asyncio.get_running_loop().time() < deadline, f"no {outcome} reload #{count}"
        await asyncio.sleep(0.05)


async def sign_in_and_call(stack: Stack, storage: MemoryStorage, browser: Browser) -> None:
    async with mcp_session(f"{stack.url}/mcp/items", storage, browser) as client:
        created = await client.call_tool("createItem", {"name": ARGUMENT, "price": 3})
        assert not created.is_error
        assert not (await client.call_tool("listItems", {})).is_error


async def test_every_event_kind_is_recorded_and_no_sink_holds_a_secret(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    tokens: list[str] = []
    browser = Browser()
    items = f"{stack.url}/mcp/items"

    # Consent, sign-in, two calls (one with an argument value that must never be recorded).
    first = MemoryStorage()
    await sign_in_and_call(stack, first, browser)
    assert first.tokens is not None and first.client_info is not None
    assert value(scrape(stack.url), "castproxy_active_sign_ins", workspace="items") == 1
    tokens += [first.tokens.access_token, first.tokens.refresh_token or ""]

    # A call with an inbound key: recorded under the key's id, never the key.
    async with httpx2.AsyncClient() as http:
        answer = await http.post(f"{stack.url}/mcp/keyed", headers={
            "X-API-Key": INBOUND_KEY, "Accept": "application/json", "MCP-Protocol-Version": "2025-11-25"},
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "listItems", "arguments": {}}})
        assert answer.status_code == 200

        # Sign-out: the client revokes its refresh token (RFC 7009).
        revoked = await http.post(f"{stack.url}/revoke", data={
            "token": first.tokens.refresh_token, "client_id": first.client_info.client_id})
        assert revoked.status_code == 200

    # A refresh that fails: the upstream dropped the grant (its access and refresh tokens).
    second = MemoryStorage()
    await sign_in_and_call(stack, second, browser)
    assert second.tokens is not None
    tokens += [second.tokens.access_token, second.tokens.refresh_token or ""]
    stack.upstream.oauth.revoke_all()
    async with mcp_session(items, second, browser) as client:
        assert (await client.call_tool("listItems", {})).is_error  # sign-in required

    # An admin ends a third sign-in; its castproxy token is refused at once.
    third = MemoryStorage()
    await sign_in_and_call(stack, third, browser)
    assert third.tokens is not None
    tokens += [third.tokens.access_token, third.tokens.refresh_token or ""]
    tokens += [header.split(" ", 1)[1] for header in stack.upstream.recorder.seen if " " in header]
    pages: list[str] = []
    async with httpx2.AsyncClient() as http:
        assert (await admin.sign_in(http, stack.url, ADMIN_KEY)).status_code == 303
        page = await http.get(f"{stack.url}/admin/workspaces/items")
        [ref] = admin.grant_refs(page.text)
        ended = await admin.end_sign_in(http, stack.url, "items", ref)
        assert ended.status_code == 303
        refused = await http.post(items, headers={"Authorization": f"Bearer {third.tokens.access_token}",
                                                  "Accept": "application/json"},
                                  json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert refused.status_code == 401

        # Reloads: a good edit, a bad one, then a lock file and a drift from it.
        good = stack.config.read_text()
        stack.config.write_text(good + "# an edit\n")
        await wait_for_reloads(stack, "ok", 1)
        stack.config.write_text(good + "surprise: 1\n")  # invalid as a whole (a bad workspace only degrades)
        await wait_for_reloads(stack, "failed", 1)
        stack.config.write_text(good)
        await wait_for_reloads(stack, "ok", 2)
        assert castproxy_main(["lock", "-c", str(stack.config)]) == 0
        await wait_for_reloads(stack, "ok", 3)  # the lock file is watched too
        stack.config.write_text(good.replace("tools: [listItems, getItem, createItem]", "tools: [listItems, getItem]"))
        await wait_for_reloads(stack, "ok", 4)

        for path in ("/admin", "/admin/workspaces/items", "/admin/workspaces/keyed"):
            response = await http.get(f"{stack.url}{path}")
            assert response.status_code == 200
            pages.append(response.text)
        metrics = (await http.get(f"{stack.url}/metrics")).text
    await browser.aclose()

    recent = list(stack.app.state.observer.audit.recent)
    stack.stop()
    trail = stack.file_trail() if (stack.folder / "audit").exists() else capsys.readouterr().out
    lines = [json.loads(line) for line in trail.splitlines() if line.startswith("{")]
    assert {line["event"] for line in lines} >= EVENTS, sorted({line["event"] for line in lines})
    assert len(lines) == len(recent)  # everything kept in memory was written
    if (stack.folder / "audit").exists():
        assert len(list((stack.folder / "audit").glob("trail.jsonl.*"))) >= 1  # it rotated

    def of(event: str, **fields: Any) -> list[dict[str, Any]]:
        return [line for line in lines if line["event"] == event and line.items() >= fields.items()]

    created = of("tool_call", workspace="items", tool="createItem")[0]
    assert created["outcome"] == "ok" and created["upstream_status"] == 201 and created["bytes"] > 0
    assert created["arguments"] == ["name", "price"]  # names only: this workspace opted in
    assert created["caller"]["client_id"] == first.client_info.client_id and len(created["caller"]["grant"]) == 12
    keyed = of("tool_call", workspace="keyed")[0]
    assert keyed["caller"]["key"].startswith("key-") and "arguments" not in keyed
    assert of("consent", outcome="approve") and len(of("sign_in", outcome="ok")) == 3
    assert of("sign_out", reason="refresh token revoked by the client")
    assert of("token_refresh_failed", outcome="sign_in_required", workspace="items")
    assert of("revocation", reason="the upstream grant is gone")
    assert [line for line in of("revocation") if line["reason"].startswith("ended by an admin (admin-")]
    assert of("reload", outcome="failed")[0]["problems"] >= 1
    assert of("lock_drift", workspace="items", outcome="drifted", serving="compiled")

    samples = parse(metrics)
    assert value(samples, "castproxy_sign_ins_total", workspace="items", outcome="ok") == 3
    assert value(samples, "castproxy_token_refreshes_total", workspace="items", outcome="sign_in_required") == 1
    assert value(samples, "castproxy_sign_in_ends_total", workspace="items", event="sign_out") == 1
    assert value(samples, "castproxy_sign_in_ends_total", workspace="items", event="revocation") == 2
    assert value(samples, "castproxy_active_sign_ins", workspace="items") == 0
    assert value(samples, "castproxy_upstream_requests_total", workspace="keyed", status_class="4xx") == 1
    assert value(samples, "castproxy_upstream_requests_total", workspace="items", status_class="2xx") == 6
    assert value(samples, "castproxy_tool_calls_total", workspace="items", tool="createItem", outcome="ok") == 3
    assert value(samples, "castproxy_config_reloads_total", outcome="ok") == 4
    assert value(samples, "castproxy_config_reloads_total", outcome="failed") == 1
    assert value(samples, "castproxy_lock_drift", workspace="items", serving="compiled") == 1
    assert (value(samples, "process_cpu_seconds_total") or 0) > 0

    everything = "\n".join([trail, *pages, metrics])
    for canary in (CLIENT_SECRET, SECRET_KEY, ADMIN_KEY, INBOUND_KEY, ARGUMENT, *filter(None, tokens)):
        assert canary not in everything, f"a secret reached a sink: {canary[:12]}..."
    assert ARGUMENT not in str(recent)
