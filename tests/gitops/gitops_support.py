"""Test helpers for the gitops tests: a small pets API spec (with `$ref`s, an enum, a recursive schema),
a config exposing it, and in-process runs of the CLI."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from castproxy.cli import main


def _op(operation_id: str, summary: str, **extra: Any) -> dict[str, Any]:
    return {"operationId": operation_id, "summary": summary, "responses": {"200": {"description": "ok"}}, **extra}


SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Pets", "version": "1"},
    "servers": [{"url": "https://pets.example.com/v1"}],
    "paths": {
        "/pets": {
            "get": _op("listPets", "List pets", description="Pets in the shop, newest first.", parameters=[
                {"name": "status", "in": "query", "schema": {"$ref": "#/components/schemas/Status"}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
            ]),
            "post": _op("createPet", "Create a pet", requestBody={"required": True, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/NewPet"}}}}),
        },
        "/pets/{id}": {
            "get": _op("getPet", "Get a pet", parameters=[
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]),
            "delete": _op("deletePet", "Delete a pet", parameters=[
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]),
        },
    },
    "components": {"schemas": {
        "Status": {"type": "string", "enum": ["available", "pending", "sold"]},
        "NewPet": {"type": "object", "required": ["name"], "properties": {
            "name": {"type": "string"},
            "tag": {"type": "string"},
            "owner": {"$ref": "#/components/schemas/Owner"},
        }},
        "Owner": {"type": "object", "properties": {
            "email": {"type": "string"},
            "friend": {"$ref": "#/components/schemas/Owner"},  # recursive: the compiler writes $defs
        }},
    }},
}

TOOLS = ["listPets", "createPet", "getPet"]


def spec(edit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    document = copy.deepcopy(SPEC)
    if edit is not None:
        edit(document)
    return document


def config_text(tools: list[str] | None = None, *, openapi: str = "spec.json", extra_workspace: str = "",
                server: str = "") -> str:
    listed = ", ".join(tools or TOOLS)
    return (
        "version: 1\n"
        + (f"server:\n{server}" if server else "")
        + "store:\n  path: state.db\n"
        + "workspaces:\n"
        + "  pets:\n"
        + f"    openapi: {openapi}\n"
        + "    auth: {type: bearer, token: \"${env:PETS_TOKEN}\"}\n"
        + f"    tools: [{listed}]\n"
        + extra_workspace
    )


@dataclass
class Project:
    """A folder with cast.yaml and spec.json."""

    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / "cast.yaml"

    @property
    def lock(self) -> Path:
        return self.folder / "cast.lock"

    def write(self, document: dict[str, Any] | None = None, tools: list[str] | None = None, **kw: Any) -> Project:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "spec.json").write_text(json.dumps(document or SPEC, indent=1))
        self.config.write_text(config_text(tools, **kw))
        return self


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`castproxy ARGV` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
