"""Tool selectors and `exclude`: which operations a workspace exposes, in which order, and what `validate` says
(at FILE:LINE:COL) about entries that match or exclude nothing."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from castproxy.catalog.select import glob_pattern
from castproxy.config.loader import load_config
from castproxy.config.model import Workspace
from castproxy.openapi.check import check_config
from castproxy.openapi.workspace import WorkspaceError, compile_workspace

OK = {"200": {"description": "ok"}}
ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]


def _op(op_id: str | None, *tags: str) -> dict[str, Any]:
    op: dict[str, Any] = {"responses": OK, "tags": list(tags)}
    if op_id:
        op["operationId"] = op_id
    return op


SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Shop", "version": "1"},
    "servers": [{"url": "https://shop.example.com/v1"}],
    "paths": {
        "/items": {"get": _op("listItems", "items"), "post": _op("createItem", "items")},
        "/items/{id}": {"parameters": ID, "get": _op("getItem", "items"), "delete": _op("deleteItem", "items")},
        "/items/{id}/photos": {"parameters": ID, "get": _op("listPhotos", "items", "media")},
        "/users": {"get": _op("listUsers", "Users")},
        "/admin/stats": {"get": _op(None, "admin")},
    },
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "shop.json").write_text(json.dumps(SPEC))
    return tmp_path


def names(folder: Path, tools: Any, exclude: Any = ()) -> list[str]:
    workspace = Workspace.model_validate({"openapi": "shop.json", "tools": tools, "exclude": list(exclude)})
    return [tool.name for tool in compile_workspace(workspace, folder, name="shop").tools]


def test_star_takes_every_operation_in_spec_order(folder: Path) -> None:
    everything = ["listItems", "createItem", "getItem", "deleteItem", "listPhotos", "listUsers", "get_admin_stats"]
    assert names(folder, "*") == everything
    assert names(folder, ["*"]) == everything


def test_selector_shapes(folder: Path) -> None:
    assert names(folder, [{"tag": "users"}]) == ["listUsers"]  # tags match in any case
    assert names(folder, [{"tag": "items", "method": "get"}]) == ["listItems", "getItem", "listPhotos"]
    assert names(folder, [{"path": "/items/*"}]) == ["getItem", "deleteItem"]  # * is one segment
    assert names(folder, [{"path": "/items/**"}]) == ["listItems", "createItem", "getItem", "deleteItem", "listPhotos"]
    assert names(folder, [{"path": "/*/{id}/photo*"}]) == ["listPhotos"]
    assert names(folder, [{"method": "DELETE"}]) == ["deleteItem"]


def test_order_is_the_first_entry_picking_each_operation(folder: Path) -> None:
    assert names(folder, ["listUsers", {"tag": "items"}, "getItem"]) == [
        "listUsers", "listItems", "createItem", "getItem", "deleteItem", "listPhotos"]


def test_exclude_narrows_selectors_but_not_explicit_entries(folder: Path) -> None:
    assert names(folder, "*", exclude=["deleteItem", {"tag": "admin"}, {"path": "/users"}]) == [
        "listItems", "createItem", "getItem", "listPhotos"]
    assert names(folder, [{"tag": "items"}, "deleteItem"], exclude=[{"method": "DELETE"}]) == [
        "listItems", "createItem", "getItem", "deleteItem", "listPhotos"]


def test_rename_applies_to_an_operation_a_selector_also_picks(folder: Path) -> None:
    workspace = Workspace.model_validate({"openapi": "shop.json", "tools": [
        {"tag": "items", "method": "GET"},
        {"operation": "getItem", "name": "item", "description": "One item by id."},
    ]})
    tools = compile_workspace(workspace, folder, name="shop").tools
    assert [tool.name for tool in tools] == ["listItems", "item", "listPhotos"]
    assert tools[1].description == "One item by id." and tools[1].operation_id == "getItem"


def test_rename_onto_a_selected_tool_name_is_an_error(folder: Path) -> None:
    workspace = Workspace.model_validate({"openapi": "shop.json", "tools": [
        "*", {"operation": "getItem", "name": "listUsers"}]})
    with pytest.raises(WorkspaceError) as caught:
        compile_workspace(workspace, folder, name="shop")
    assert caught.value.problems == [(("workspaces", "shop", "tools", 1, "name"),
                                      "tool name 'listUsers' is already used by operation 'listUsers' (picked by "
                                      "tools[0]); give one of them another name")]


def test_glob_pattern() -> None:
    assert glob_pattern("/**").match("/")
    assert glob_pattern("/repos/**").match("/repos")
    assert glob_pattern("/repos/**/").match("/repos/{owner}/{repo}")
    assert not glob_pattern("/repos/*").match("/repos/{owner}/{repo}")
    assert glob_pattern("/repos/*/*/pulls*").match("/repos/{owner}/{repo}/pulls")
    assert not glob_pattern("/repo.*").match("/repoXs")  # only * is special


CONFIG = """\
version: 1
workspaces:
  shop:
    openapi: shop.json
    tools:
      - "*"
      - tag: itmes
      - path: /orders/**
      - {tag: users, method: DELETE}
      - operation: getItem
        name: item
    exclude:
      - deleteItm
      - listItems
      - tag: media
      - {path: /nothing/**}
      - path: /users
"""


def test_validate_reports_selectors_that_match_nothing_at_their_position(folder: Path) -> None:
    path = folder / "cast.yaml"
    path.write_text(CONFIG)
    problems = [str(p).replace(str(path), "cast.yaml") for p in check_config(load_config(path), offline=False)]
    assert problems == [
        "cast.yaml:7:14: tag 'itmes' is not in the spec; did you mean 'items'?",
        "cast.yaml:8:15: path glob '/orders/**' matches no path in the spec (its paths start with /admin, "
        "/items, /users; `*` is one segment, `**` any number)",
        "cast.yaml:9:9: no operation in the spec matches all of tag 'users' and method 'DELETE'",
        "cast.yaml:13:9: warning: operationId 'deleteItm' is not in the spec; did you mean 'deleteItem'?; "
        "this entry excludes nothing",
        "cast.yaml:16:16: warning: path glob '/nothing/**' matches no path in the spec (its paths start with "
        "/admin, /items, /users; `*` is one segment, `**` any number); this entry excludes nothing",
    ]


def test_validate_warns_about_excludes_that_change_nothing(folder: Path) -> None:
    path = folder / "cast.yaml"
    path.write_text(textwrap.dedent("""\
        version: 1
        workspaces:
          shop:
            openapi: shop.json
            tools:
              - tag: items
              - listUsers
            exclude:
              - get_admin_stats
              - path: /users
              - method: DELETE
        """))
    problems = [str(p).replace(str(path), "cast.yaml") for p in check_config(load_config(path), offline=False)]
    assert problems == [  # an operation without an operationId is excluded by a selector, not by its tool name
        "cast.yaml:9:9: warning: operationId 'get_admin_stats' is not in the spec (run 'castproxy tools --spec "
        "shop.json' to list its 6 operations); this entry excludes nothing",
        "cast.yaml:10:9: warning: this selector matches only operations listed by operationId in `tools`, which "
        "`exclude` never removes; it excludes nothing",
    ]


def test_excluding_a_listed_operation_is_an_error(folder: Path) -> None:
    path = folder / "cast.yaml"
    path.write_text("version: 1\nworkspaces:\n  shop:\n    openapi: shop.json\n    tools: [getItem, '*']\n"
                    "    exclude: [getItem]\n")
    problems = [str(p).replace(str(path), "cast.yaml") for p in check_config(load_config(path), offline=False)]
    assert problems == ["cast.yaml:6:15: operation 'getItem' is listed at tools[0] and excluded here; "
                        "remove one of the two"]


def test_excluding_everything_is_an_error(folder: Path) -> None:
    path = folder / "cast.yaml"
    path.write_text("version: 1\nworkspaces:\n  shop:\n    openapi: shop.json\n    tools: [{tag: users}]\n"
                    "    exclude: [listUsers]\n")
    problems = [str(p).replace(str(path), "cast.yaml") for p in check_config(load_config(path), offline=False)]
    assert problems == ["cast.yaml:6:14: no tools left: `exclude` removes every operation that `tools` picks"]


def test_validate_summary_counts_selected_tools(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from castproxy.cli import main

    path = folder / "cast.yaml"
    path.write_text("version: 1\nworkspaces:\n  shop:\n    openapi: shop.json\n    tools: '*'\n"
                    "    exclude: [{tag: admin}]\n    discovery: search\n")
    assert main(["validate", "-c", str(path)]) == 0
    assert "ok: workspace 'shop' (auth none, 6 tools, discovery search)" in capsys.readouterr().out


def test_tools_command_shows_the_selection_and_its_warnings(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from castproxy.cli import main

    path = folder / "cast.yaml"
    path.write_text("version: 1\nworkspaces:\n  shop:\n    openapi: shop.json\n    tools: [{path: /items/**}]\n"
                    "    exclude: [listUsers, {method: DELETE}]\n")
    assert main(["tools", "shop", "-c", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [tool["name"] for tool in out["tools"]] == ["listItems", "createItem", "getItem", "listPhotos"]
    assert out["warnings"] == [f"{path}:6:15: operation 'listUsers' is not picked by any entry of `tools`; "
                               "this entry excludes nothing"]
