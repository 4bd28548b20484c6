"""Fixtures for the openapi tests: the npm test corpora and a loopback server that serves specs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openapi_support import SpecServer, corpus_dir


@pytest.fixture(scope="session")
def oas_examples() -> Path:
    return corpus_dir("@readme/oas-examples")


@pytest.fixture(scope="session")
def github_spec() -> Path:
    return corpus_dir("@octokit/openapi") / "generated" / "api.github.com.json"


@pytest.fixture
def spec_server() -> Iterator[SpecServer]:
    server = SpecServer()
    try:
        yield server
    finally:
        server.stop()
