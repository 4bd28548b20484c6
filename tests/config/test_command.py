"""`castproxy validate` and `castproxy schema` as a user runs them: output lines and exit codes 0/1/2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from castproxy.cli import main

ROOT = Path(__file__).resolve().parents[2]
WriteConfig = Callable[..., Path]
WriteSpec = Callable[..., Path]

VALID = """
version: 1
server:
  port: 8099
  secret_key: ${env:TEST_SECRET_KEY}
workspaces:
  users:
    openapi: ./spec.json
    auth: {type: oauth2, authorization_url: "https://id.example.com/a", token_url: "https://id.example.com/t",
           client_id: castproxy, client_secret: "${env:TEST_CLIENT}"}
    tools: [listUsers, getUser]
  items:
    openapi: ./spec.json
    auth: {type: bearer, token: "${env:TEST_CLIENT}"}
    tools: [listItems]
"""
ENV = {"TEST_SECRET_KEY": "s" * 40, "TEST_CLIENT": "c"}


def run(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CASTPROXY_", "TEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "castproxy", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd, env={**clean, **(env or {})},
    )


EXAMPLE_ENV = {"TEST_CLIENT_SECRET": "cs_from_the_banner", "CASTPROXY_SECRET_KEY": "k" * 43}


def test_validate_the_example_offline_exits_0() -> None:
    result = run("validate", "-c", "cast.yaml.example", "--offline", env=EXAMPLE_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: workspace 'test-oauth' (oauth2 custom authorization_code, 5 tools)" in result.stdout
    assert "register this redirect URI at the upstream OAuth server: http://localhost:8080/oauth/callback" in (
        result.stdout
    )
    assert result.stdout.rstrip().endswith("cast.yaml.example: valid (1 workspace)")
    assert "secret" not in result.stdout  # no literal or default secret left in the example to warn about


def _where(text: str) -> str:
    """LINE:COL of the first uncommented line of cast.yaml.example holding `text` (the value's position)."""
    lines = (ROOT / "cast.yaml.example").read_text(encoding="utf-8").splitlines()
    number, line = next((n, line) for n, line in enumerate(lines, 1)
                        if text in line and not line.lstrip().startswith("#"))
    return f"{number}:{line.index(text) + 1}"


def test_the_example_fails_loudly_naming_each_secret_that_is_not_exported() -> None:
    """The first-run trap: a skipped `export` must not validate (it used to fall back to example secrets)."""
    result = run("validate", "-c", "cast.yaml.example")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"cast.yaml.example:{_where('${env:CASTPROXY_SECRET_KEY}')}: environment variable CASTPROXY_SECRET_KEY "
        "is not set (referenced as ${env:CASTPROXY_SECRET_KEY})",
        f"cast.yaml.example:{_where('${env:TEST_CLIENT_SECRET}')}: environment variable TEST_CLIENT_SECRET "
        "is not set (referenced as ${env:TEST_CLIENT_SECRET})",
    ]
    only_one = run("validate", "-c", "cast.yaml.example", env={"CASTPROXY_SECRET_KEY": "k" * 43})
    assert only_one.returncode == 1 and "TEST_CLIENT_SECRET is not set" in only_one.stdout
    assert "CASTPROXY_SECRET_KEY" not in only_one.stdout


def test_offline_validation_runs_without_secrets_and_names_each_unset_one() -> None:
    """`--offline` is the review-time check (CI, pre-commit), where production secrets are absent by design."""
    result = run("validate", "-c", "cast.yaml.example", "--offline")
    assert result.returncode == 0, result.stdout + result.stderr
    warnings = [line for line in result.stdout.splitlines() if "is not set" in line]
    assert warnings == [
        f"cast.yaml.example:{_where('${env:CASTPROXY_SECRET_KEY}')}: warning: environment variable "
        "CASTPROXY_SECRET_KEY is not set (referenced as ${env:CASTPROXY_SECRET_KEY}); serving needs it",
        f"cast.yaml.example:{_where('${env:TEST_CLIENT_SECRET}')}: warning: environment variable "
        "TEST_CLIENT_SECRET is not set (referenced as ${env:TEST_CLIENT_SECRET}); serving needs it",
    ]
    assert result.stdout.rstrip().endswith("cast.yaml.example: valid (1 workspace)")


def test_no_secret_in_the_example_or_the_tutorial_has_a_default() -> None:
    tutorial = (ROOT / "docs" / "tutorial.md").read_text()
    for text in ((ROOT / "cast.yaml.example").read_text(), tutorial):
        lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        assert not [line for line in lines if ":-" in line and "${env:" in line]


def test_validate_a_valid_config_prints_ok_lines(
    write_config: WriteConfig,
    write_spec: WriteSpec,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    write_spec("listUsers", "getUser", "listItems")
    path = write_config(VALID)
    assert main(["validate", "-c", str(path), "--offline"]) == 0
    out = capsys.readouterr().out
    assert "ok: workspace 'users' (oauth2 custom authorization_code, 2 tools) at http://127.0.0.1:8099/mcp/users" in out
    assert "ok: workspace 'items' (auth bearer, 1 tool) at http://127.0.0.1:8099/mcp/items" in out
    assert "register this redirect URI at the upstream OAuth server: http://127.0.0.1:8099/oauth/callback" in out


def test_validate_errors_exit_1_with_file_line_col(write_config: WriteConfig, tmp_path: Path) -> None:
    write_config("version: 1\nworkspaces:\n  api:\n    openapi: ./s.json\n    tools: []\n    auth: {type: magic}\n")
    result = run("validate", "-c", "cast.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "cast.yaml:5:5: `tools` is empty: list at least one operationId or selector, or write `tools: \"*\"` for "
        "every operation",
        "cast.yaml:6:18: unknown auth type 'magic' (expected one of: none, bearer, api_key, headers, oauth2, login)",
    ]


def test_validate_warnings_alone_exit_0(write_config: WriteConfig, write_spec: WriteSpec, tmp_path: Path) -> None:
    write_spec("x", name="s.json")
    write_config("version: 1\nworkspaces:\n  api:\n    openapi: ./s.json\n    auth: {type: bearer, token: abc}\n"
                 "    tools: [x]\n")
    result = run("validate", cwd=tmp_path)  # ./cast.yaml by default
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == (
        "cast.yaml:5:33: warning: `token` is written literally in the config: use ${env:NAME} or ${file:PATH} "
        "so the secret stays out of the file (and out of git)"
    )


def test_validate_reads_castproxy_config(write_config: WriteConfig, write_spec: WriteSpec) -> None:
    write_spec("x", name="s.json")
    path = write_config("version: 1\nworkspaces: {api: {openapi: ./s.json, tools: [x]}}\n", name="elsewhere.yaml")
    result = run("validate", cwd=ROOT, env={"CASTPROXY_CONFIG": str(path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{path}: valid (1 workspace)" in result.stdout


def test_validate_missing_file_exits_1(tmp_path: Path) -> None:
    result = run("validate", "-c", "nope.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "config file not found: nope.yaml (pass -c FILE or set CASTPROXY_CONFIG)" in result.stderr


def test_validate_bad_env_override_exits_1(write_config: WriteConfig, tmp_path: Path) -> None:
    write_config("version: 1\nserver:\n  port: 8080\nworkspaces: {api: {openapi: ./s.json, tools: [x]}}\n")
    result = run("validate", cwd=tmp_path, env={"CASTPROXY_PORT": "eighty"})
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "cast.yaml:3:9: environment variable CASTPROXY_PORT: `port` must be a whole number (got 'eighty')"
    ]


@pytest.mark.parametrize("args", [["validate", "--bogus"], ["validate", "-c"], ["schema", "extra"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert "usage: castproxy" in result.stderr


def test_schema_prints_the_committed_schema() -> None:
    result = run("schema")
    assert result.returncode == 0
    assert result.stdout == (ROOT / "schemas" / "cast.schema.json").read_text(encoding="utf-8")


def test_validate_includes_spec_check_problems(write_config: WriteConfig, capsys: pytest.CaptureFixture[str]) -> None:
    """castproxy.openapi.check's problems (a local spec is read under --offline too) print with the others and
    decide the exit code."""
    spec = {"openapi": "3.1.0", "info": {"title": "s", "version": "1"}, "servers": [{"url": "http://api.test"}],
            "paths": {"/items": {"get": {"operationId": "listItems", "responses": {"200": {"description": "ok"}}}}}}
    write_config(json.dumps(spec), name="s.json")
    path = write_config("version: 1\nworkspaces:\n  api:\n    openapi: ./s.json\n    tools: [lstItems]\n")
    assert main(["validate", "-c", str(path), "--offline"]) == 1
    expected = f"{path}:5:13: operationId 'lstItems' is not in the spec; did you mean 'listItems'?\n"
    assert capsys.readouterr().out == expected
