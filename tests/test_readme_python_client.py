"""The README's Python client example runs as written (only its URL and key filled in) against a running castproxy.

The block under "## Calling a workspace from Python" is taken from README.md, as
tests/e2e/test_demo_tutorial.py takes the tutorial's blocks, and run by this environment's Python
(the `mcp` 2.3 SDK castproxy depends on) against castproxy on loopback, in front of the bundled
test server, on a workspace with an inbound key.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from support.net import free_socket
from support.servers import run

from castproxy.serve.app import create_app
from castproxy.testserver.app import create_app as create_testserver
from castproxy.testserver.runner import run_in_thread

README = Path(__file__).resolve().parents[1] / "README.md"
INBOUND_KEY = "readme-example-key-0123456789"


def snippet() -> str:
    section = README.read_text().split("## Calling a workspace from Python", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block in the README's Python client section"
    return match.group(1)


def test_the_snippet_uses_the_mcp_2_3_names() -> None:
    code = snippet()
    assert "streamable_http_client(URL, http_client=http) as (read, write)" in code
    assert "result.is_error" in code and "result.structured_content" in code
    assert "streamablehttp_client" not in code and "isError" not in code


def test_the_readme_python_client_runs_against_castproxy(tmp_path: Path) -> None:
    upstream = run_in_thread(create_testserver("none"))
    config = tmp_path / "cast.yaml"
    config.write_text(f"version: 1\nstore:\n  path: state.db\nworkspaces:\n  items:\n"
                      f"    openapi: {upstream.url}/openapi.json\n    base_url: {upstream.url}\n"
                      f"    inbound:\n      api_keys: [{INBOUND_KEY}]\n    tools: [listItems, getItem]\n")
    sock = free_socket()
    proxy = run(create_app(config, reload=False, port_override=sock.getsockname()[1]), sock)
    code = snippet()
    assert 'URL = "http://localhost:8080/mcp/items"' in code and "YOUR_MCP_KEY" in code
    code = code.replace("http://localhost:8080", proxy.url).replace("YOUR_MCP_KEY", INBOUND_KEY)
    try:
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                                cwd=tmp_path)
    finally:
        proxy.stop()
        upstream.stop()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "tools: listItems, getItem"
    assert lines[1].startswith("result: {'items': [{'id': 1, 'name': 'Widget'") and "'total': 3}" in lines[1]
