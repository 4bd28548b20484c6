"""CI conventions: `validate --format github|json`, the pre-commit hooks, and lock/diff without secrets."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from gitops_support import Project, run
from ruamel.yaml import YAML

from castproxy.cli import build_parser
from castproxy.config.loader import UNRESOLVED_SECRET, load_config
from castproxy.config.problems import ConfigError, Problem
from castproxy.gitops.ci import escape_data, escape_property, github_command

ROOT = Path(__file__).resolve().parents[2]
BROKEN = """version: 1
workspaces:
  pets:
    openapi: spec.json
    tools: [listPets, getPett]
    timeout: soon
"""


def test_github_lines_carry_file_line_and_column(project: Project, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", str(project.folder.parent))
    project.config.write_text(BROKEN)
    code, out, _ = run(capsys, "validate", "-c", str(project.config), "--format", "github")
    assert code == 1
    assert out.splitlines() == [
        "::error file=repo/cast.yaml,line=6,col=14,title=castproxy validate::`timeout` must be a duration like 30, "
        "'30s', '500ms' or '2m' (got 'soon')",
    ]
    project.config.write_text(BROKEN.replace("    timeout: soon\n", ""))
    code, out, _ = run(capsys, "validate", "-c", str(project.config), "--format", "github")
    assert code == 1
    assert out.splitlines() == [
        "::error file=repo/cast.yaml,line=5,col=23,title=castproxy validate::operationId 'getPett' is not in the "
        "spec; did you mean 'getPet'?",
    ]


def test_github_warnings_and_a_valid_config(project: Project, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project.folder)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    project.config.write_text(project.config.read_text().replace('"${env:PETS_TOKEN}"', "literal-token"))
    code, out, _ = run(capsys, "validate", "--format", "github")
    assert code == 0
    lines = out.splitlines()
    assert re.fullmatch(r"::warning file=cast\.yaml,line=7,col=33,title=castproxy validate::`token` is written "
                        r"literally in the config.*", lines[0])
    assert lines[-1] == "cast.yaml: valid (1 workspace)"


def test_github_escaping_follows_the_runner() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a,b:c%\n") == "a%2Cb%3Ac%25%0A"
    line = github_command(Problem("dir,x/odd:name.yaml", 3, 7, "bad: 100%,\nreally"), environ={})
    assert line == "::error file=dir%2Cx/odd%3Aname.yaml,line=3,col=7,title=castproxy validate::bad: 100%25,%0Areally"


def test_validate_json_shape(project: Project, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETS_TOKEN", "t")
    code, out, _ = run(capsys, "validate", "-c", str(project.config), "--format", "json")
    assert code == 0
    assert json.loads(out) == {
        "config": str(project.config), "valid": True, "offline": False, "errors": 0, "warnings": 0, "problems": [],
        "workspaces": [{"name": "pets", "auth": "auth bearer", "tools": 3, "discovery": "list",
                        "url": "http://127.0.0.1:8080/mcp/pets"}],
        "redirect_uri": None,
    }
    project.config.write_text(BROKEN)
    code, out, _ = run(capsys, "validate", "-c", str(project.config), "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["valid"] is False and report["workspaces"] == []
    assert report["problems"][0] == {"file": str(project.config), "line": 6, "column": 14, "severity": "error",
                                     "message": "`timeout` must be a duration like 30, '30s', '500ms' or '2m' "
                                                "(got 'soon')"}
    code, out, _ = run(capsys, "validate", "-c", str(project.folder / "missing.yaml"), "--format", "json")
    assert code == 1 and "config file not found" in json.loads(out)["problems"][0]["message"]


def test_text_format_is_unchanged(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.config.write_text(BROKEN)
    code, out, _ = run(capsys, "validate", "-c", str(project.config))
    assert code == 1
    assert out.splitlines() == [f"{project.config}:6:14: `timeout` must be a duration like 30, '30s', '500ms' or "
                                "'2m' (got 'soon')"]


def test_pre_commit_hooks_run_real_commands() -> None:
    hooks = YAML(typ="safe").load((ROOT / ".pre-commit-hooks.yaml").read_text())
    by_id = {hook["id"]: hook for hook in hooks}
    assert set(by_id) == {"castproxy-validate", "castproxy-lock-check"}
    for hook in hooks:
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        argv = shlex.split(hook["entry"])
        assert argv[0] == "castproxy"
        build_parser().parse_args([*argv[1:], "-c", "cast.yaml"])  # exits 2 on a bad option
    assert shlex.split(by_id["castproxy-lock-check"]["entry"]) == ["castproxy", "lock", "--check"]


def test_lock_and_diff_resolve_no_secret_but_every_other_reference(project: Project,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_config(project.config, need_secrets=False)
    token = loaded.config.workspaces["pets"].auth.token  # type: ignore[union-attr]
    assert token.get_secret_value() == UNRESOLVED_SECRET
    with pytest.raises(ConfigError):
        load_config(project.config)  # serve and validate still need it
    project.config.write_text(project.config.read_text().replace("openapi: spec.json", "openapi: ${env:SPEC}"))
    with pytest.raises(ConfigError) as caught:
        load_config(project.config, need_secrets=False)
    assert "environment variable SPEC is not set" in str(caught.value)


def test_example_workflow_runs_documented_commands() -> None:
    workflow = YAML(typ="safe").load((ROOT / "docs" / "examples" / "castproxy-review.yml").read_text())
    scripts = "\n".join(step.get("run", "") for step in workflow["jobs"]["review"]["steps"])
    commands = [line.strip() for line in scripts.splitlines() if line.strip().startswith("castproxy ")]
    assert [shlex.split(command)[1] for command in commands] == ["validate", "lock", "diff"]
    for command in commands:
        expanded = command.split(">")[0].replace("${GITHUB_BASE_REF}", "main").replace("$CONFIG", "cast.yaml")
        build_parser().parse_args(shlex.split(expanded)[1:])  # exits 2 on a bad option
    assert "--format github" in commands[0] and "--format markdown" in commands[2]


def test_every_change_kind_is_documented() -> None:
    doc = (ROOT / "docs" / "gitops.md").read_text()
    source = "\n".join(path.read_text() for path in (ROOT / "castproxy" / "gitops").glob("*.py"))
    kinds = set(re.findall(r'"((?:[a-z]+-)+(?:added|removed|changed|narrowed|widened|required|optional|'
                           r'restricted|lifted|renamed))"', source))
    kinds |= {f"{prefix}-{change}" for prefix in ("argument", "output-field")
              for change in ("added", "removed", "required", "optional")}
    assert len(kinds) > 25
    assert sorted(kind for kind in kinds if f"`{kind}`" not in doc) == []


def test_a_bad_lock_setting_is_positioned(project: Project) -> None:
    project.write(server="  lock: strict\n")
    with pytest.raises(ConfigError) as caught:
        load_config(project.config, need_secrets=False)
    problem = caught.value.problems[0]
    assert (problem.line, problem.column) == (3, 9)
    assert "warn" in problem.message and "enforce" in problem.message


@pytest.mark.parametrize("command", ["lock", "diff"])
def test_new_commands_have_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and out.startswith(f"usage: castproxy {command}")
    assert command in run(capsys, "--help")[1]


def test_validate_says_when_enforce_has_no_lock(project: Project, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETS_TOKEN", "t")
    project.write(server="  lock: enforce\n")
    code, out, _ = run(capsys, "validate", "-c", str(project.config))
    assert code == 1
    assert out.startswith(f"{project.config}:3:9: server.lock is enforce, but there is no lock file cast.lock")
    assert run(capsys, "lock", "-c", str(project.config))[0] == 0
    assert run(capsys, "validate", "-c", str(project.config))[0] == 0
