"""`mcp-remote` (the Node bridge Claude Desktop uses) signs in to castproxy and lists tools.

Automates the manual check: `npx mcp-remote http://127.0.0.1:PORT/mcp/WORKSPACE` prints the sign-in
URL (no browser can open here), the browser stand-in approves consent and the upstream sign-in, and
mcp-remote receives the code on its own loopback callback. Needs `mcp-remote` under
.cache/testdata/node_modules (scripts/fetch-test-data); skips with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import pytest
from oauth_e2e_support import SECRET_KEY, start_oauth_stack
from support.net import free_port
from support.oauth_client import Browser
from support.skips import skip_or_fail

pytestmark = pytest.mark.node

CLIENT_SECRET = "e2e-upstream-client-secret-0123456789"
MCP_REMOTE_CLIENT = Path(__file__).parents[2] / ".cache/testdata/node_modules/mcp-remote/dist/client.js"
AUTHORIZE_URL = re.compile(r"(http://\S+/authorize\?\S+)")


def node_or_skip() -> str:
    """Skip on a laptop without the Node parts; in CI (CI=true) their absence is a failure."""
    node = shutil.which("node")
    if node is None:
        skip_or_fail("Node.js is not installed")
    if not MCP_REMOTE_CLIENT.exists():
        skip_or_fail("mcp-remote is not under .cache/testdata (run scripts/fetch-test-data)")
    return node


async def test_mcp_remote_signs_in_and_lists_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    node = node_or_skip()
    monkeypatch.setenv("E2E_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("E2E_SECRET_KEY", SECRET_KEY)
    stack = start_oauth_stack(tmp_path, CLIENT_SECRET)
    callback_port = free_port()
    browser = Browser(client_redirect=f"http://127.0.0.1:{callback_port}/", deliver=True)
    process = await asyncio.create_subprocess_exec(
        node,
        str(MCP_REMOTE_CLIENT),
        f"{stack.proxy.url}/mcp/items",
        str(callback_port),
        "--host",
        "127.0.0.1",
        "--allow-http",
        env={**os.environ, "MCP_REMOTE_CONFIG_DIR": str(tmp_path / "mcp-auth"), "BROWSER": "true"},
        stdin=asyncio.subprocess.PIPE,  # kept open: mcp-remote shuts down when its stdin closes
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []
    try:
        assert process.stdout is not None

        async def follow() -> None:
            assert process.stdout is not None
            async for raw in process.stdout:
                line = raw.decode(errors="replace")
                output.append(line)
                match = AUTHORIZE_URL.search(line)
                if match and browser.sign_ins == 0:  # printed after "Please authorize this client by visiting:"
                    await browser.redirect_handler(match.group(1))

        await asyncio.wait_for(asyncio.gather(follow(), process.wait()), timeout=60)
    except TimeoutError:
        pytest.fail("mcp-remote did not finish:\n" + "".join(output)[-3000:])
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await browser.aclose()
        stack.stop()
    text = "".join(output)
    assert browser.consent_pages == 1, text[-3000:]
    assert "Connected successfully!" in text, text[-3000:]
    for tool in ("listItems", "getItem", "createItem"):
        assert f'"name": "{tool}"' in text
    assert all("cpat_" not in header for header in stack.recorder.seen)
