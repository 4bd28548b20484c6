"""docs/tutorial.md works as written: every ```sh block runs in order in a fresh folder (servers in the
background where the page says `<!-- test: background -->`, `<!-- test: skip -->` for the install and
the Node-based client), with only the ports changed to free ones and the pasted client secret filled
in from the test server's banner. Then the browser part of step 7 is done by the `mcp` SDK client
(consent page, approval page, the five tools) as in test_demo.py. Step 8 (the jwt test server and a
login workspace; its blocks marked `jwt` and `jwt_background`) runs next in the same folder and shell
environment, with the password pasted from its banner.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from demo_support import run_tutorial
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from support.net import free_port

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorial.md"
SECRET_PLACEHOLDER = "cs_PASTE_FROM_THE_BANNER"
PASSWORD_PLACEHOLDER = "pw_PASTE_FROM_THE_BANNER"
BLOCK = re.compile(r"(?:<!-- test: (?P<mark>\w+) -->\n)?```sh\n(?P<body>.*?)```", re.S)
ENV_MARK = "__TUTORIAL_ENV__"


def _blocks() -> list[tuple[str | None, str]]:
    return [(match["mark"], match["body"]) for match in BLOCK.finditer(TUTORIAL.read_text())]


def _wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "castproxy serve exited"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered 200")


def _banner_value(process: subprocess.Popen[str], pattern: str) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        match = re.search(pattern, line)
        if match:
            return match.group(1)
    raise AssertionError(f"the test server printed nothing like {pattern!r}")


def test_the_page_has_the_expected_shape():
    marks = [mark for mark, _ in _blocks()]
    assert marks.count("background") == 2 and marks.count("skip") == 2
    assert marks.count("jwt_background") == 2 and marks.count("jwt") == 2
    assert marks.index("jwt_background") > max(i for i, mark in enumerate(marks) if mark in ("background", None))
    assert SECRET_PLACEHOLDER in TUTORIAL.read_text() and PASSWORD_PLACEHOLDER in TUTORIAL.read_text()


def _stop(background: list[subprocess.Popen[str]]) -> None:
    for process in reversed(background):
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.slow
async def test_tutorial_runs_as_written(tmp_path: Path) -> None:
    ports = {"3456": str(free_port()), "8080": str(free_port()), "3457": str(free_port()), "8081": str(free_port())}
    env = {key: value for key, value in os.environ.items() if not key.startswith("CASTPROXY_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    background: list[subprocess.Popen[str]] = []
    outputs: list[str] = []
    pasted: dict[str, str] = {}
    try:
        for mark, body in _blocks():
            if mark == "skip":
                continue
            # One pass, so a free port that happens to contain "8080" is not replaced again.
            script = re.sub("|".join(ports), lambda match: ports[match.group()], body)
            for placeholder, value in pasted.items():
                script = script.replace(placeholder, value)
            if mark in ("background", "jwt_background"):
                process = subprocess.Popen(["bash", "-c", "exec " + script.strip()], cwd=tmp_path, env=env,
                                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                background.append(process)
                if "--mode oauth" in script:
                    pasted[SECRET_PLACEHOLDER] = _banner_value(process, r"client_secret : (cs_\S+)")
                elif "--mode jwt" in script:
                    pasted[PASSWORD_PLACEHOLDER] = _banner_value(process, r"password      : (pw_\S+)")
                else:
                    port = ports["8081"] if mark == "jwt_background" else ports["8080"]
                    _wait_ready(f"http://127.0.0.1:{port}/readyz", process)
                continue
            assert SECRET_PLACEHOLDER not in script, "the secret is pasted before the test server ran"
            assert PASSWORD_PLACEHOLDER not in script, "the password is pasted before the test server ran"
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", f"{script}\necho {ENV_MARK}\nenv -0"],
                                    cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, f"{script}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            shown, _, exported = result.stdout.partition(f"{ENV_MARK}\n")
            env = dict(item.split("=", 1) for item in exported.split("\0") if "=" in item)
            outputs.append(shown + result.stderr)

        port = ports["8080"]
        text = "\n".join(outputs)
        assert "valid (1 workspace)" in text
        assert "5 tools from test-oauth" in text
        assert f'resource_metadata="http://localhost:{port}/.well-known/oauth-protected-resource/mcp/test-oauth"' \
            in text
        claude_desktop = next(out for out in outputs if '"mcpServers"' in out and "mcp-remote" in out)
        snippet = json.loads(claude_desktop[: claude_desktop.rindex("}") + 1])
        url = snippet["mcpServers"]["test-oauth"]["args"][-1]
        assert url == f"http://localhost:{port}/mcp/test-oauth"

        await run_tutorial(url)  # step 7, with the SDK client and a browser stand-in

        # Step 8: the login workspace validated, and the curl call answered as alice.
        assert "ok: workspace 'test-jwt' (auth login, 5 tools)" in text
        answer = json.loads(outputs[-1])
        assert answer["result"]["isError"] is False
        assert answer["result"]["structuredContent"]["user"]["name"] == "Alice Martin"
        assert answer["result"]["structuredContent"]["auth"] == "jwt"
        await run_login_tools_of_step_8(f"http://localhost:{ports['8081']}/mcp/test-jwt")
    finally:
        _stop(background)


async def run_login_tools_of_step_8(url: str) -> None:
    async with Client(streamable_http_client(url), mode="legacy", cache=None) as client:
        tools = await client.list_tools()
        assert {tool.name for tool in tools.tools} == {"listItems", "createItem", "listUsers", "getItem",
                                                       "getCurrentUser"}
        created = await client.call_tool("createItem", {"name": "Tutorial item", "price": 1})
        assert not created.is_error and created.structured_content["owner_id"] == 1  # alice


@pytest.mark.parametrize("block", [body for mark, body in _blocks() if mark in (None, "jwt")])
def test_no_runnable_block_needs_a_fixed_secret(block):
    assert "cs_" not in block or SECRET_PLACEHOLDER in block
    assert "pw_" not in block or PASSWORD_PLACEHOLDER in block


def test_skipping_the_export_step_fails_validate_naming_each_variable(tmp_path: Path) -> None:
    """A first-run trap: without step 2's exports, step 4 must fail loudly, not validate with a default secret."""
    blocks = [body for mark, body in _blocks() if mark is None]
    write = next(body for body in blocks if body.startswith("cat > cast.yaml"))
    check = next(body for body in blocks if body.startswith("castproxy validate")).splitlines()[0]
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("CASTPROXY_") and key != "TEST_CLIENT_SECRET"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", f"{write}\n{check}"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "cast.yaml:7:15: environment variable CASTPROXY_SECRET_KEY is not set "
        "(referenced as ${env:CASTPROXY_SECRET_KEY})",
        "cast.yaml:23:22: environment variable TEST_CLIENT_SECRET is not set (referenced as ${env:TEST_CLIENT_SECRET})",
    ]
