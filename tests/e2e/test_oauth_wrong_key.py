"""Issue 11, finding 8: a wrong `server.secret_key` must not destroy stored sign-ins.

Restarted with another key, castproxy cannot decrypt the upstream grants in its store. It fails closed and
says why (503 naming the key, on the MCP endpoint and in /readyz), and deletes nothing; restarted with the
right key, the same client's token works again without a new sign-in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from oauth_e2e_support import SECRET_KEY, OAuthStack, start_oauth_stack
from support.oauth_client import Browser, MemoryStorage, mcp_session

CLIENT_SECRET = "e2e-upstream-client-secret-key-0123456789"
WRONG_KEY = "a-different-secret-key-0123456789abcdefghij"


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OAuthStack]:
    monkeypatch.setenv("E2E_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    stack = start_oauth_stack(tmp_path, CLIENT_SECRET)
    yield stack
    stack.stop()


def _rows(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as db:
        return dict(db.execute("SELECT namespace, count(*) FROM entries GROUP BY namespace").fetchall())


async def test_a_wrong_key_fails_closed_and_the_right_key_brings_the_sign_in_back(
    stack: OAuthStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{stack.proxy.url}/mcp/items"
    storage, browser = MemoryStorage(), Browser()
    async with mcp_session(url, storage, browser) as client:
        assert not (await client.call_tool("listItems", {})).is_error
    assert storage.tokens is not None
    database = stack.config.parent / "state.db"
    before = _rows(database)
    assert before["upstream-grant"] == 1 and before["as-grant"] == 1

    monkeypatch.setenv("E2E_SECRET_KEY", WRONG_KEY)
    stack.restart_proxy()
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "listItems", "arguments": {}}}
    headers = {
        "Authorization": f"Bearer {storage.tokens.access_token}",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2025-11-25",
    }
    async with httpx2.AsyncClient(timeout=15) as http:
        for _ in range(2):  # the second call fails the same way: nothing was given up after the first
            answer = await http.post(url, headers=headers, json=call)
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"] == "store_key_mismatch"
            assert "server.secret_key" in answer.json()["message"]
        ready = await http.get(f"{stack.proxy.url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["secret_key"]["reads_store"] is False
        assert "server.secret_key" in ready.json()["secret_key"]["problem"]
    after = _rows(database)
    assert after["upstream-grant"] == 1 and after["as-grant"] == 1
    assert stack.recorder.refreshes == 0  # nothing was sent upstream either

    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    stack.restart_proxy()
    async with mcp_session(url, storage, browser) as client:
        assert not (await client.call_tool("listItems", {})).is_error
    assert browser.sign_ins == 1
    async with httpx2.AsyncClient(timeout=15) as http:
        ready = await http.get(f"{stack.proxy.url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["secret_key"] == {"reads_store": True}
    await browser.aclose()
