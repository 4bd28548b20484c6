"""`castproxy testserver` as a user runs it: the banner, the served API, a clean stop, a taken port."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx2
from support import web

from castproxy.testserver.runner import bind_socket


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "castproxy", "testserver", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _banner(process: subprocess.Popen[str]) -> str:
    """The banner's lines: from the first non-blank line to the next blank one."""
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        if line.strip():
            lines.append(line)
        elif lines:
            break
    return "".join(lines)


def test_oauth_banner_prints_the_client_and_endpoints_and_ctrl_c_stops_it():
    process = _start("--mode", "oauth", "--port", "0", "--redirect-uri", "http://localhost:9/cb")
    try:
        text = _banner(process)
        assert "client_id     : test-client-id" in text
        secret = re.search(r"client_secret : (cs_\S+)", text).group(1)
        port = re.search(r"OpenAPI spec    : http://localhost:(\d+)/openapi.json", text).group(1)
        assert f"Token endpoint  : http://localhost:{port}/auth/token" in text
        assert f"Auth endpoint   : http://localhost:{port}/auth/authorize" in text
        assert "grant_types   : authorization_code, client_credentials, refresh_token" in text
        assert "redirect_uris : http://localhost:9/cb" in text
        token = web.post(f"http://127.0.0.1:{port}/auth/token", data={"grant_type": "client_credentials"},
                         auth=httpx2.BasicAuth("test-client-id", secret), timeout=10)
        assert token.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0


def test_apikey_banner_prints_the_key():
    process = _start("--mode", "apikey", "--port", "0")
    try:
        text = _banner(process)
        key = re.search(r"api_key       : (cast_\S+)", text).group(1)
        port = re.search(r"http://localhost:(\d+)", text).group(1)
        answer = web.get(f"http://127.0.0.1:{port}/api/items", headers={"X-API-Key": key}, timeout=10)
        assert answer.status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)


def test_a_taken_port_exits_1_with_advice():
    taken = bind_socket("127.0.0.1", 0)
    taken.listen()
    try:
        port = str(taken.getsockname()[1])
        result = subprocess.run([sys.executable, "-m", "castproxy", "testserver", "--port", port],
                                capture_output=True, text=True, timeout=30)
    finally:
        taken.close()
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr


def test_a_negative_token_lifetime_is_a_usage_error():
    result = subprocess.run([sys.executable, "-m", "castproxy", "testserver", "--mode", "oauth",
                             "--token-lifetime", "-1"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "--token-lifetime" in result.stderr
