"""`castproxy tools`: one spec alone or a configured workspace, as JSON for pipelines or as a list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openapi_support import spec

from castproxy.cli import main

OK = {"200": {"description": "ok"}}
ITEMS = spec(
    {
        "/items": {"get": {"operationId": "listItems", "summary": "List items",
                           "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                           "responses": OK}},
        "/items/{id}": {"delete": {"operationId": "deleteItem", "summary": "Delete an item", "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}], "responses": OK}},
        "/legacy": {"get": {"operationId": "legacy", "parameters": [
            {"name": "Authorization", "in": "header", "schema": {"type": "string"}}], "responses": OK}},
    },
    servers=[{"url": "https://api.example.com"}],
)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "items.json").write_text(json.dumps(ITEMS))
    (tmp_path / "cast.yaml").write_text(
        "version: 1\nworkspaces:\n  items:\n    openapi: items.json\n    tools:\n      - operation: deleteItem\n"
        "        name: delete_item\n        description: Delete one item.\n      - listItems\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CASTPROXY_CONFIG", raising=False)
    return tmp_path


def test_spec_json_lists_every_operation(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "--spec", "items.json", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [tool["name"] for tool in payload["tools"]] == ["listItems", "deleteItem", "legacy"]
    first = payload["tools"][0]
    assert list(first) == ["name", "operationId", "method", "path", "title", "description", "input_schema",
                           "annotations"]
    assert (first["method"], first["path"], first["operationId"]) == ("GET", "/items", "listItems")
    assert first["input_schema"]["properties"]["limit"] == {"type": "integer"}
    # Every input schema names its dialect (SEP-1613), as tools/list publishes it.
    assert {tool["input_schema"]["$schema"] for tool in payload["tools"]} == {
        "https://json-schema.org/draft/2020-12/schema"}
    assert first["annotations"]["readOnlyHint"] is True
    assert payload["base_url"] == "https://api.example.com"
    assert payload["warnings"] == ["legacy (GET /legacy): header parameter 'Authorization' is set by castproxy, "
                                   "not by the caller; left out"]


def test_json_output_is_stable(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["tools", "--spec", "items.json", "--json"])
    first = capsys.readouterr().out
    main(["tools", "--spec", str(folder / "items.json"), "--json"])
    assert capsys.readouterr().out == first


def test_workspace_tools_as_clients_see_them(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "items", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [(t["name"], t["operationId"]) for t in payload["tools"]] == [("delete_item", "deleteItem"),
                                                                        ("listItems", "listItems")]
    assert payload["tools"][0]["description"] == "Delete one item."
    assert payload["tools"][0]["annotations"]["destructiveHint"] is True
    assert payload["warnings"] == []  # the unselected operation's warning is not this workspace's


def test_human_output(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "items", "-c", "cast.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 tools from items, calling https://api.example.com\n")
    assert ("delete_item  DELETE /items/{id}  [destructive]\n    Delete one item.\n"
            "    arguments (* required): id*: string") in out
    assert "listItems  GET /items  [read-only]" in out


def test_unknown_workspace(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "nope"]) == 1
    assert "no workspace 'nope'" in capsys.readouterr().err


def test_bad_spec_is_exit_1_with_the_reason(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "bad.yaml").write_text("just: [a yaml, that is not openapi]\n")
    assert main(["tools", "--spec", "bad.yaml"]) == 1
    assert capsys.readouterr().err == ("castproxy tools: bad.yaml: not an OpenAPI document "
                                       "(no 'openapi' or 'swagger' version field)\n")


def test_workspace_problem_points_into_the_config(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "cast.yaml").write_text("version: 1\nworkspaces:\n  items:\n    openapi: items.json\n"
                                      "    tools: [listItem]\n")
    assert main(["tools", "items"]) == 1
    err = capsys.readouterr().err
    assert "cast.yaml:5:13: operationId 'listItem' is not in the spec; did you mean 'listItems'?" in err
