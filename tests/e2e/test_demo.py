"""`castproxy demo` end to end, as a user would go through it after running the command.

The demo runs as a real subprocess (test server in oauth mode + `castproxy serve` as its child). Then
the `mcp` SDK client connects to the printed MCP URL; its OAuthClientProvider registers at the proxy,
and a browser stand-in answers the proxy's consent page and the test server's approval page (the
real page, not --auto-approve), signing in as Bob. The client lists the five tutorial tools and
calls each one; finally SIGINT (Ctrl-C) stops everything and frees both ports.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_support import Demo, mcp_url, run_login_tools, run_tutorial, start_demo
from support.net import free_port, port_is_free

from castproxy.testserver.runner import bind_socket

pytestmark = pytest.mark.slow


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    port, upstream_port = free_port(), free_port()
    command = [sys.executable, "-m", "castproxy", "demo", "--port", str(port), "--upstream-port", str(upstream_port)]
    running = start_demo(command, tmp_path, port, upstream_port, tmp_path / "demo.log")
    yield running
    running.kill()


async def test_demo_sign_in_then_every_tutorial_tool(demo: Demo) -> None:
    output = demo.read_until("Press Ctrl-C to stop")
    url = mcp_url(output)
    assert url == f"http://localhost:{demo.port}/mcp/test-oauth"
    assert "client_id     : test-client-id" in output and '"mcp-remote@latest"' in output

    await run_tutorial(url)

    assert demo.stop(signal.SIGINT) == 0
    assert port_is_free(demo.port) and port_is_free(demo.upstream_port)
    config = re.search(r"Config\s*:\s*(\S+)", output).group(1)
    assert not Path(config).parent.exists()


async def test_demo_in_jwt_mode_serves_a_login_workspace(tmp_path: Path) -> None:
    port, upstream_port = free_port(), free_port()
    command = [sys.executable, "-m", "castproxy", "demo", "--mode", "jwt", "--port", str(port),
               "--upstream-port", str(upstream_port)]
    demo = start_demo(command, tmp_path, port, upstream_port, tmp_path / "demo.log")
    try:
        output = demo.read_until("Press Ctrl-C to stop")
        assert mcp_url(output) == f"http://localhost:{port}/mcp/test-jwt"
        password = re.search(r"password      : (pw_\S+)", output).group(1)
        assert "username      : alice" in output and "castproxy logs in at the test server as alice" in output
        config = Path(re.search(r"Config\s*:\s*(\S+)", output).group(1))
        assert "type: login" in config.read_text() and password not in config.read_text()

        await run_login_tools(mcp_url(output))

        assert demo.stop(signal.SIGINT) == 0
        assert port_is_free(port) and port_is_free(upstream_port) and not config.parent.exists()
    finally:
        demo.kill()


def test_demo_stops_cleanly_on_sigterm(demo: Demo) -> None:
    demo.read_until("Press Ctrl-C to stop")
    assert demo.stop(signal.SIGTERM) == 0
    assert port_is_free(demo.port) and port_is_free(demo.upstream_port)


def test_demo_refuses_a_taken_port(tmp_path: Path) -> None:
    taken = bind_socket("127.0.0.1", 0)
    taken.listen()
    try:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "castproxy", "demo", "--port", str(port), "--upstream-port", str(free_port())],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )
    finally:
        taken.close()
    assert result.returncode == 1
    assert f"port {port} is in use" in result.stderr and "--port" in result.stderr
