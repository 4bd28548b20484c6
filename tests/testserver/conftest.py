"""Fixtures: a real test server (uvicorn on a free loopback port) per test, and an HTTP client for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest
from support import web

from castproxy.testserver.app import create_app
from castproxy.testserver.runner import RunningServer, run_in_thread

Start = Callable[..., tuple[Any, RunningServer]]


@pytest.fixture
def start_server() -> Iterator[Start]:
    running: list[RunningServer] = []

    def start(mode: str, **options: Any) -> tuple[Any, RunningServer]:
        app = create_app(mode, **options)
        server = run_in_thread(app)
        running.append(server)
        return app, server

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(follow_redirects=False, timeout=10, verify=web.TLS) as client:
        yield client
