"""`python -m castproxy serve` as an operator runs it: a subprocess on a loopback port, up once /healthz answers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx2

from support import web
from support.net import free_port


def start_serve(
    config: Path, env: dict[str, str], port: int | None = None, *, args: Sequence[str] = ("--no-reload",)
) -> tuple[subprocess.Popen[str], str]:
    """`python -m castproxy serve -c CONFIG --port PORT ARGS` (a free port by default): (process, base URL)."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "castproxy", "serve", "-c", str(config), "--port", str(port), *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"castproxy serve exited {process.returncode}: {process.stderr.read()}")
        try:
            if web.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx2.TransportError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("castproxy serve did not answer /healthz within 30 s")


def stop_serve(process: subprocess.Popen[str]) -> str:
    """SIGTERM, then its log (stderr); killed if it does not exit within 15 s."""
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return stderr
