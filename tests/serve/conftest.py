"""Fixtures for the serve tests: a recording upstream app, a config folder and a running proxy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from serve_support import Upstream, config_text, run, write_spec
from support.net import free_socket
from support.servers import Running


@dataclass
class Proxy:
    url: str
    app: Any
    config: Path
    running: Running

    def mcp(self, workspace: str) -> str:
        return f"{self.url}/mcp/{workspace}"


@pytest.fixture
def upstream() -> Iterator[tuple[Upstream, str]]:
    api = Upstream()
    running = run(api.app())
    yield api, running.url
    running.stop()


@pytest.fixture
def start_proxy(tmp_path: Path, upstream: tuple[Upstream, str]) -> Iterator[Callable[..., Proxy]]:
    started: list[Running] = []

    def start(workspaces: dict[str, str], *, extra_server: str = "", reload: bool = True) -> Proxy:
        from castproxy.serve.app import create_app

        write_spec(tmp_path)
        config = tmp_path / "cast.yaml"
        config.write_text(config_text(upstream[1], workspaces, extra_server=extra_server))
        sock = free_socket()
        app = create_app(config, reload=reload, port_override=sock.getsockname()[1])
        running = run(app, sock)
        started.append(running)
        return Proxy(running.url, app, config, running)

    yield start
    for running in started:
        running.stop()


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"TEST_TOKEN": "tok-123", "TEST_KEY": "key-456", "MCP_KEY": "inbound-789"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CASTPROXY_CONFIG", raising=False)
