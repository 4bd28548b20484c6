"""The MCP Inspector CLI signs in through castproxy's authorization server, then calls tools with the token.

A second, independent OAuth client implementation (the Inspector's, on the official TypeScript SDK) meets
castproxy's sign-in: RFC 9728/8414 discovery from the 401, dynamic client registration, authorize with
PKCE and `resource`, consent, the upstream sign-in (test upstream in mode `oauth`, auto-approved) and the
token exchange. The Inspector prints the sign-in URL (no browser here); the browser stand-in of
support.oauth_client approves consent and delivers the code to the Inspector's loopback callback. A second
run reuses the stored token with `--stored-auth-only` in the 2026-07-28 era and calls a tool.
Needs scripts/fetch-node-tools; skips without (fails on CI=true).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from oauth_e2e_support import SECRET_KEY, start_oauth_upstream, write_config
from support.net import free_port
from support.node import node22, package_bin
from support.oauth_client import Browser
from support.serve_process import start_serve, stop_serve

pytestmark = [pytest.mark.node, pytest.mark.slow]

CLIENT_SECRET = "inspector-upstream-client-secret-0123456789"
SIGN_IN_URL = re.compile(r"(http://\S+/authorize\?\S+)")


async def inspector(
    node: str, cli: Path, home: Path, *args: str, on_line: Callable[[str], Awaitable[None]] | None = None
) -> tuple[int, str, str]:
    """One `mcp-inspector --cli` run: (exit code, stdout, stderr); `on_line` sees each stderr line as it comes."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "MCP_AUTO_OPEN_ENABLED": "true",  # sign in without a TTY: print the URL, wait on the callback
        "MCP_INSPECTOR_SECRET_STORE": "file",  # under HOME, so the second run finds the token
    }
    command = [node, str(cli), "--cli", *args, "--format", "json"]
    process = await asyncio.create_subprocess_exec(
        *command,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    errors: list[str] = []

    async def follow() -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode(errors="replace")
            errors.append(line)
            if on_line is not None:
                await on_line(line)

    try:
        out, _, _ = await asyncio.wait_for(asyncio.gather(process.stdout.read(), follow(), process.wait()), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail("the Inspector did not finish:\n" + "".join(errors)[-3000:])
    return process.returncode or 0, out.decode(), "".join(errors)


async def test_inspector_signs_in_and_calls_tools(tmp_path: Path) -> None:
    node = node22()
    cli = package_bin("@modelcontextprotocol/inspector", "mcp-inspector")
    port = free_port()
    proxy_url = f"http://127.0.0.1:{port}"
    upstream = start_oauth_upstream([proxy_url], CLIENT_SECRET)
    recorder = upstream.recorder
    config = write_config(tmp_path, proxy_url, upstream.url)
    process, _ = start_serve(config, {"E2E_CLIENT_SECRET": CLIENT_SECRET, "E2E_SECRET_KEY": SECRET_KEY}, port)
    callback = f"http://127.0.0.1:{free_port()}/oauth/callback"
    browser = Browser(client_redirect=callback, deliver=True)

    async def sign_in(line: str) -> None:
        match = SIGN_IN_URL.search(line)
        if match and browser.sign_ins == 0:  # "Please navigate to: URL"
            await browser.redirect_handler(match.group(1))

    home = tmp_path / "home"
    mcp = ["--transport", "http", f"{proxy_url}/mcp/items"]
    try:
        code, out, err = await inspector(
            node, cli, home, *mcp, "--callback-url", callback, "--method", "tools/list", on_line=sign_in
        )
        assert code == 0, err[-3000:]
        assert [tool["name"] for tool in json.loads(out)["result"]["tools"]] == ["listItems", "getItem", "createItem"]
        assert browser.consent_pages == 1
        assert f"{proxy_url}/authorize?" in browser.visited[0]
        assert "code_challenge_method=S256" in browser.visited[0] and "resource=" in browser.visited[0]

        code, out, err = await inspector(
            node,
            cli,
            home,
            *mcp,
            "--stored-auth-only",
            "--protocol-era",
            "modern",
            "--method",
            "tools/call",
            "--tool-name",
            "getItem",
            "--tool-arg",
            "id=1",
        )
        assert code == 0, err[-3000:]
        result = json.loads(out)["result"]
        assert result["isError"] is False and result["structuredContent"]["id"] == 1
        assert browser.sign_ins == 1  # the second run needed no sign-in
    finally:
        await browser.aclose()
        log = stop_serve(process)
        upstream.stop()
    # The upstream saw upstream tokens only, never castproxy's own access tokens.
    assert recorder.seen and all(header.startswith("Bearer ") and "cpat_" not in header for header in recorder.seen)
    assert CLIENT_SECRET not in log and SECRET_KEY not in log
