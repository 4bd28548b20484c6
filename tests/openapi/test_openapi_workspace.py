"""A workspace's tools (selection, renames, base URL) and what `validate` reports about specs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openapi_support import SpecServer, spec

import castproxy.openapi.workspace as workspace_module
from castproxy.config.loader import load_config
from castproxy.config.model import Workspace
from castproxy.openapi.check import check_config
from castproxy.openapi.workspace import WorkspaceError, compile_workspace

OK = {"200": {"description": "ok"}}
ITEMS = spec(
    {
        "/items": {"get": {"operationId": "listItems", "summary": "List items", "responses": OK},
                   "post": {"operationId": "createItem", "responses": OK}},
        "/items/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {"operationId": "getItem", "responses": OK},
            "delete": {"operationId": "deleteItem", "responses": OK},
        },
    },
    servers=[{"url": "https://api.example.com/v1/"}],
)


def workspace(**fields: Any) -> Workspace:
    return Workspace.model_validate({"openapi": "items.json", "tools": ["listItems"], **fields})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "items.json").write_text(json.dumps(ITEMS))
    return tmp_path


def test_tools_in_config_order_renamed_and_redescribed(folder: Path) -> None:
    compiled = compile_workspace(workspace(tools=[
        "getItem",
        {"operation": "deleteItem", "name": "delete_item", "description": "Delete one item (cannot be undone)."},
        "listItems",
    ]), folder, name="items")
    assert [tool.name for tool in compiled.tools] == ["getItem", "delete_item", "listItems"]
    assert compiled.tools[1].description == "Delete one item (cannot be undone)."
    assert compiled.tools[1].operation_id == "deleteItem"
    assert compiled.base_url == "https://api.example.com/v1"


def test_base_url_from_config_wins(folder: Path) -> None:
    compiled = compile_workspace(workspace(base_url="http://localhost:3456/"), folder)
    assert compiled.base_url == "http://localhost:3456"


def test_unknown_operation_id_says_did_you_mean(folder: Path) -> None:
    with pytest.raises(WorkspaceError) as caught:
        compile_workspace(workspace(tools=["listItems", "getItems", {"operation": "deleteitem"}]), folder, name="w")
    assert caught.value.problems == [
        (("workspaces", "w", "tools", 1), "operationId 'getItems' is not in the spec; did you mean 'getItem'?"),
        (("workspaces", "w", "tools", 2, "operation"), "operationId 'deleteitem' is not in the spec; "
                                                       "did you mean 'deleteItem'?"),
    ]


def test_renamed_tools_must_keep_names_unique(folder: Path) -> None:
    with pytest.raises(WorkspaceError) as caught:
        compile_workspace(workspace(tools=["getItem", {"operation": "listItems", "name": "getItem"}]), folder, name="w")
    (loc, message), = caught.value.problems
    assert loc == ("workspaces", "w", "tools", 1, "name")
    assert "'getItem' is already used by tools[0]" in message


def test_relative_server_needs_base_url_for_a_file_spec(tmp_path: Path) -> None:
    (tmp_path / "items.json").write_text(json.dumps({**ITEMS, "servers": [{"url": "/api"}]}))
    with pytest.raises(WorkspaceError, match="set base_url"):
        compile_workspace(workspace(), tmp_path)


def test_relative_server_resolves_against_the_spec_url(spec_server: SpecServer, tmp_path: Path) -> None:
    url = spec_server.add_json("/docs/openapi.json", {**ITEMS, "servers": [{"url": "/api"}]})
    compiled = compile_workspace(workspace(openapi=url), tmp_path)
    assert compiled.base_url == spec_server.url + "/api"


def test_spec_that_cannot_load_is_a_problem_at_the_openapi_key(tmp_path: Path) -> None:
    (tmp_path / "items.json").write_text("{not json")
    with pytest.raises(WorkspaceError) as caught:
        compile_workspace(workspace(), tmp_path, name="w")
    (loc, message), = caught.value.problems
    assert loc == ("workspaces", "w", "openapi")
    assert message.startswith("items.json: not valid JSON")


def write_config(folder: Path, body: str) -> Path:
    path = folder / "cast.yaml"
    path.write_text("version: 1\nworkspaces:\n" + body)
    return path


def test_check_config_points_at_file_line_column(
    folder: Path, spec_server: SpecServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = spec_server.add_json("/slow.json", ITEMS, delay=15)
    (folder / "dangling.json").write_text(json.dumps(spec({"/x": {"post": {
        "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Nope"}}}},
        "responses": OK}}})))
    path = write_config(folder, (
        "  good:\n    openapi: items.json\n    tools:\n      - listItems\n      - getItm\n"
        "  broken:\n    openapi: dangling.json\n    tools: [x]\n"
        f"  slow:\n    openapi: {slow}\n    tools: [listItems]\n"
    ))
    original = workspace_module.load_document  # the default 10 s fetch timeout, shortened for the test
    monkeypatch.setattr(workspace_module, "load_document",
                        lambda source, base_dir, **kw: original(source, base_dir, **kw, timeout=0.5))
    problems = check_config(load_config(path), offline=False)
    assert [str(problem) for problem in problems] == [
        f"{path}:7:9: operationId 'getItm' is not in the spec; did you mean 'getItem'?",
        f"{path}:9:14: POST /x: $ref '#/components/schemas/Nope' does not resolve (no 'components' there)",
        f"{path}:12:14: {slow}: timed out after 0.5 s fetching the spec",
    ]


def test_check_config_offline_skips_urls_with_a_warning(folder: Path) -> None:
    path = write_config(folder, "  remote:\n    openapi: http://127.0.0.1:9/openapi.json\n    tools: [a]\n")
    problems = check_config(load_config(path), offline=True)
    assert [(p.line, p.column, p.severity) for p in problems] == [(4, 14, "warning")]
    assert "not fetched (--offline)" in problems[0].message


def test_check_config_passes_a_good_config(folder: Path) -> None:
    path = write_config(folder, "  good:\n    openapi: items.json\n    tools: [listItems, getItem]\n")
    assert check_config(load_config(path), offline=False) == []
