"""Fixtures for the gitops tests: a project folder (cast.yaml + spec.json) in a temp folder, no secrets set."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitops_support import Project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path / "repo").write()


@pytest.fixture(autouse=True)
def _no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # lock and diff never need the upstream secrets: the config's token reference stays unset.
    monkeypatch.delenv("PETS_TOKEN", raising=False)
    monkeypatch.delenv("CASTPROXY_CONFIG", raising=False)
