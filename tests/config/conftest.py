"""Shared helpers for the config tests: write a cast.yaml into a temp folder and load it."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str, name: str = "cast.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """A minimal OpenAPI document with one GET operation per operationId, as ./spec.json."""

    def write(*operation_ids: str, name: str = "spec.json") -> Path:
        paths = {
            f"/{operation_id}": {"get": {"operationId": operation_id, "responses": {"200": {"description": "ok"}}}}
            for operation_id in operation_ids
        }
        document = {
            "openapi": "3.0.3",
            "info": {"title": "test", "version": "1"},
            "servers": [{"url": "https://api.example.com"}],
            "paths": paths,
        }
        path = tmp_path / name
        path.write_text(json.dumps(document), encoding="utf-8")
        return path

    return write
