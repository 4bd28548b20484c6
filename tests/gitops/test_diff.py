"""`castproxy diff`: two configs, a git revision against the work tree, or the lock against now;
each change classed, in text, markdown and json, with exit codes 0 / 1 / 3."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gitops_support import TOOLS, Project, run, spec


def _add_update_operation(document: dict[str, Any]) -> None:
    document["paths"]["/pets/{id}"]["put"] = {
        "operationId": "updatePet", "summary": "Replace a pet",
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "ok"}},
    }


def _add_required_argument(document: dict[str, Any]) -> None:
    new_pet = document["components"]["schemas"]["NewPet"]
    new_pet["properties"]["species"] = {"type": "string"}
    new_pet["required"].append("species")


def _remove_enum_value(document: dict[str, Any]) -> None:
    document["components"]["schemas"]["Status"]["enum"].remove("sold")


def _change_description(document: dict[str, Any]) -> None:
    document["paths"]["/pets"]["get"]["description"] = "Pets in the shop, oldest first."


# (spec edit, tools the new config lists, expected (tool, kind, class, argument) changes, exit code)
EDITS: dict[str, tuple[Callable[[dict[str, Any]], None], list[str], list[tuple[Any, ...]], int]] = {
    "adds an exposed operation": (
        _add_update_operation, [*TOOLS, "updatePet"],
        [("updatePet", "tool-added", "non-breaking", None)], 1),
    "adds a required argument": (
        _add_required_argument, TOOLS,
        [("createPet", "argument-added", "breaking", "species")], 3),
    "removes an enum value": (
        _remove_enum_value, TOOLS,
        [("listPets", "enum-values-removed", "breaking", "status")], 3),
    "only changes a description": (
        _change_description, TOOLS,
        [("listPets", "description-changed", "non-breaking", None)], 1),
}


@pytest.fixture
def old_and_new(tmp_path: Path) -> Callable[[str], tuple[Path, Path]]:
    """Two folders, each with its own cast.yaml and spec.json: before and after one spec edit."""

    def make(edit: str) -> tuple[Path, Path]:
        change, tools, _, _ = EDITS[edit]
        old = Project(tmp_path / "old").write()
        new = Project(tmp_path / "new").write(spec(change), tools=tools)
        return old.config, new.config

    return make


@pytest.mark.parametrize("edit", list(EDITS))
def test_each_edit_in_json(edit: str, old_and_new: Callable[[str], tuple[Path, Path]],
                           capsys: pytest.CaptureFixture[str]) -> None:
    old, new = old_and_new(edit)
    _, _, expected, exit_code = EDITS[edit]
    code, out, err = run(capsys, "diff", str(old), str(new), "--format", "json")
    assert code == exit_code, err
    report = json.loads(out)
    assert [(c["tool"], c["kind"], c["class"], c["argument"]) for c in report["changes"]] == expected
    assert report["exit_code"] == exit_code
    assert report["result"] == {1: "changes", 3: "breaking"}[exit_code]
    assert report["summary"]["breaking"] == (1 if exit_code == 3 else 0)
    assert set(report) == {"old", "new", "result", "exit_code", "summary", "changes", "notes"}
    assert set(report["changes"][0]) == {"workspace", "tool", "kind", "class", "message", "argument", "schema",
                                         "before", "after"}


@pytest.mark.parametrize("edit", list(EDITS))
def test_each_edit_in_text(edit: str, old_and_new: Callable[[str], tuple[Path, Path]],
                           capsys: pytest.CaptureFixture[str]) -> None:
    old, new = old_and_new(edit)
    _, _, expected, exit_code = EDITS[edit]
    code, out, _ = run(capsys, "diff", str(old), str(new))
    assert code == exit_code
    lines = out.splitlines()
    assert lines[0] == f"{old} -> {new}: 1 change" + (", 1 breaking" if exit_code == 3 else "")
    assert lines[1] == "workspace pets"
    tool, _, change_class, _ = expected[0]
    assert lines[2].split()[:2] == [change_class, f"{tool}:"]
    assert len(lines) == 3


@pytest.mark.parametrize("edit", list(EDITS))
def test_each_edit_in_markdown(edit: str, old_and_new: Callable[[str], tuple[Path, Path]],
                               capsys: pytest.CaptureFixture[str]) -> None:
    old, new = old_and_new(edit)
    _, _, expected, exit_code = EDITS[edit]
    code, out, _ = run(capsys, "diff", str(old), str(new), "--format", "markdown")
    assert code == exit_code
    tool, _, change_class, _ = expected[0]
    shown_class = "**breaking**" if change_class == "breaking" else change_class
    rows = [line for line in out.splitlines() if line.startswith(f"| {shown_class} | `{tool}` |")]
    assert len(rows) == 1
    assert out.startswith("<!-- castproxy-diff -->\n### ")
    assert ("⚠️" in out.splitlines()[1]) == (exit_code == 3)


def test_the_messages_say_what_changed(old_and_new: Callable[[str], tuple[Path, Path]],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    messages = {}
    for edit in EDITS:
        old, new = old_and_new(edit)
        messages[edit] = json.loads(run(capsys, "diff", str(old), str(new), "--format", "json")[1])["changes"][0]
    assert messages["adds an exposed operation"]["message"] == "tool added (PUT /pets/{id})"
    assert messages["adds a required argument"]["message"] == "argument `species` added (required)"
    assert messages["removes an enum value"]["message"] == 'argument `status` no longer accepts "sold"'
    description = messages["only changes a description"]
    assert description["message"] == "description changed"
    assert description["before"].endswith("newest first.") and description["after"].endswith("oldest first.")


def test_no_change_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one, two = Project(tmp_path / "one").write(), Project(tmp_path / "two").write()
    code, out, _ = run(capsys, "diff", str(one.config), str(two.config))
    assert (code, out) == (0, f"{one.config} -> {two.config}: no changes to the exposed tools\n")
    assert json.loads(run(capsys, "diff", str(one.config), str(two.config), "--format", "json")[1])["result"] == \
        "no-changes"


def test_removed_and_renamed_tools_are_breaking(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = Project(tmp_path / "old").write()
    new = Project(tmp_path / "new").write(tools=["listPets", "{operation: createPet, name: add_pet}"])
    code, out, _ = run(capsys, "diff", str(old.config), str(new.config), "--format", "json")
    assert code == 3
    changes = [(c["tool"], c["kind"], c["class"]) for c in json.loads(out)["changes"]]
    assert changes == [("getPet", "tool-removed", "breaking"), ("add_pet", "tool-renamed", "breaking")]


def test_nested_recursive_body_changes_are_found_through_defs(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    def edit(document: dict[str, Any]) -> None:
        document["components"]["schemas"]["Owner"]["properties"]["email"] = {"type": "string", "format": "email"}

    old = Project(tmp_path / "old").write()
    new = Project(tmp_path / "new").write(spec(edit))
    code, out, _ = run(capsys, "diff", str(old.config), str(new.config), "--format", "json")
    assert code == 3
    assert [(c["argument"], c["kind"]) for c in json.loads(out)["changes"]] == [
        ("owner.email", "constraint-narrowed")]


def test_each_config_resolves_its_own_relative_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    Project(tmp_path / "a").write()
    Project(tmp_path / "b").write(spec(_remove_enum_value))
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "diff", "a/cast.yaml", "b/cast.yaml")
    assert code == 3
    assert out.startswith("a/cast.yaml -> b/cast.yaml: 1 change, 1 breaking")


def test_usage_errors_exit_2(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "diff", str(project.config))[0] == 2
    assert run(capsys, "diff", "a.yaml", "b.yaml", "--git", "HEAD")[0] == 2
    assert run(capsys, "diff", "a.yaml", "b.yaml", "-c", "x.yaml")[0] == 2
    assert run(capsys, "diff", "--format", "html")[0] == 2


def test_a_missing_config_or_lock_exits_1_with_empty_stdout(project: Project,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "diff", "-c", str(project.config), "--format", "json")
    assert (code, out) == (1, "") and "no lock file" in err
    code, out, err = run(capsys, "diff", str(project.config), str(project.folder / "nope.yaml"))
    assert (code, out) == (1, "") and "config file not found" in err


# --- git ---------------------------------------------------------------------------------------

def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=folder,
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repository(tmp_path: Path) -> Project:
    """A git repository whose config lives in a subfolder, with its spec in a sibling folder."""
    root = tmp_path / "repository"
    project = Project(root / "deploy")
    project.write(openapi="../specs/pets.json")
    (root / "specs").mkdir()
    (project.folder / "spec.json").rename(root / "specs" / "pets.json")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "pets")
    return project


def test_diff_git_compares_a_revision_with_the_work_tree(repository: Project,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    spec_file = repository.folder.parent / "specs" / "pets.json"
    spec_file.write_text(json.dumps(spec(_add_required_argument)))
    code, out, _ = run(capsys, "diff", "--git", "HEAD", "-c", str(repository.config))
    assert code == 3
    assert out.splitlines()[0] == f"HEAD:deploy/cast.yaml -> {repository.config}: 1 change, 1 breaking"
    assert "createPet: argument `species` added (required)" in out
    # Committed, the same change is between HEAD~1 and HEAD; the work tree equals HEAD.
    git(repository.folder.parent, "commit", "-qam", "species")
    assert run(capsys, "diff", "--git", "HEAD", "-c", str(repository.config))[0] == 0
    code, out, _ = run(capsys, "diff", "--git", "HEAD~1", "-c", str(repository.config), "--format", "json")
    assert code == 3
    assert json.loads(out)["old"] == "HEAD~1:deploy/cast.yaml"


def test_diff_git_works_from_another_folder_and_with_config_edits(
    repository: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repository.write(tools=[*TOOLS, "deletePet"], openapi="../specs/pets.json")
    (repository.folder / "spec.json").unlink()
    monkeypatch.chdir(repository.folder.parent / "specs")
    code, out, _ = run(capsys, "diff", "--git", "HEAD", "-c", "../deploy/cast.yaml")
    assert code == 1
    assert "deletePet: tool added (DELETE /pets/{id})" in out


def test_diff_git_when_the_config_is_new(repository: Project, capsys: pytest.CaptureFixture[str]) -> None:
    other = Project(repository.folder.parent / "other").write()
    code, out, _ = run(capsys, "diff", "--git", "HEAD", "-c", str(other.config))
    assert code == 1
    assert out.count("tool added") == 3 and "workspace added" in out


def test_diff_git_errors(repository: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "diff", "--git", "no-such-rev", "-c", str(repository.config))
    assert (code, out) == (1, "") and "unknown git revision 'no-such-rev'" in err
    outside = Project(tmp_path / "outside").write()
    code, _, err = run(capsys, "diff", "--git", "HEAD", "-c", str(outside.config))
    assert code == 1 and "castproxy diff --git: " in err


def test_diff_git_names_problems_at_the_revision(repository: Project, capsys: pytest.CaptureFixture[str]) -> None:
    repository.config.write_text(repository.config.read_text().replace("getPet", "getPetz"))
    git(repository.folder.parent, "commit", "-qam", "typo")
    repository.config.write_text(repository.config.read_text().replace("getPetz", "getPet"))
    code, _, err = run(capsys, "diff", "--git", "HEAD", "-c", str(repository.config))
    assert code == 1
    assert err.startswith("HEAD:deploy/cast.yaml:8:")
    assert "operationId 'getPetz' is not in the spec" in err


def test_lock_against_now_gets_definitions_from_the_committed_config(
    repository: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lock holds digests; HEAD's config and spec give the locked definitions back (checked by digest)."""
    assert run(capsys, "lock", "-c", str(repository.config))[0] == 0
    git(repository.folder.parent, "add", ".")
    git(repository.folder.parent, "commit", "-qm", "lock")
    (repository.folder.parent / "specs" / "pets.json").write_text(json.dumps(spec(_remove_enum_value)))
    code, out, _ = run(capsys, "diff", "-c", str(repository.config))
    assert code == 3
    assert out.splitlines() == [
        "cast.lock -> cast.yaml: 1 change, 1 breaking",
        "workspace pets",
        '  breaking      listPets: argument `status` no longer accepts "sold"',
    ]
    code, out, _ = run(capsys, "lock", "--check", "-c", str(repository.config))
    assert code == 1 and 'listPets: argument `status` no longer accepts "sold"' in out


def test_markdown_disarms_what_a_spec_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(document: dict[str, Any]) -> None:
        document["paths"]["/pets"]["get"]["summary"] = "@admins <img src=x> [click](https://evil.example) | x"

    old = Project(tmp_path / "old").write()
    new = Project(tmp_path / "new").write(spec(edit))
    out = run(capsys, "diff", str(old.config), str(new.config), "--format", "markdown")[1]
    row = next(line for line in out.splitlines() if "title changed" in line)
    assert "@admins" not in row and "<img" not in row and "[click](" not in row
    assert row.count(" | ") == 2  # the spec's `|` did not add a column
    assert "&#64;admins &lt;img src=x&gt; \\[click\\](https://evil.example) \\| x" in row


def test_a_large_diff_fits_in_a_comment_with_breaking_changes_first() -> None:
    from castproxy.gitops.changes import Change, Comparison
    from castproxy.gitops.report import markdown

    added = [Change("w", f"tool{i:03}", "tool-added", "non-breaking", "tool added (GET /x)") for i in range(300)]
    changes = (*added, Change("w", "zzz", "tool-removed", "breaking", "tool removed (GET /y)"))
    out = markdown(Comparison("old", "new", changes))
    assert len(out) < 65536
    assert "| **breaking** | `zzz` |" in out
    assert out.count("\n| non-breaking |") == 199
    assert "101 more changes not shown" in out
