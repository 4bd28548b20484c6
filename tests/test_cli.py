"""The command line: help text and the contract's exit codes."""

import subprocess
import sys

import pytest

from castproxy.cli import main


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "castproxy", *args], capture_output=True, text=True, timeout=60)


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("serve", "validate", "tools", "schema", "connect", "testserver", "demo"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["serve", "validate", "tools", "schema", "connect", "testserver", "demo"])
def test_each_subcommand_has_help(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0
    assert "usage: castproxy " + command in result.stdout


def test_no_command_is_a_usage_error() -> None:
    assert run().returncode == 2


def test_unknown_option_is_a_usage_error() -> None:
    result = run("validate", "--bogus")
    assert result.returncode == 2
    assert "unrecognized arguments: --bogus" in result.stderr


def test_tools_needs_workspace_or_spec() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["tools"])
    assert exit_info.value.code == 2
