"""scripts/test and scripts/demo on a second run: no pip, no npm, no network; and the test data kept small.

setup-venv runs in a copy of the repository's scripts with a stand-in `.venv/bin/python` that records
every `-m pip` call (pip itself needs the network, which is what must not happen); the fetch scripts
run for real against the shared .cache with an `npm` on PATH that records and fails, so any download
attempt shows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.skips import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
NO_NETWORK = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "npm_config_registry": "http://127.0.0.1:9/",
              "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "setup-venv", tmp_path / "scripts" / "setup-venv")
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/usr/bin/env bash\nif [ "$1 $2" = "-m pip" ]; then echo "$*" >> "{tmp_path}/pip-calls"; '
                      f'exit 0; fi\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return tmp_path


def setup_venv(copy: Path, *args: str) -> list[str]:
    """Run scripts/setup-venv ARGS; the pip calls it made."""
    calls = copy / "pip-calls"
    calls.unlink(missing_ok=True)
    subprocess.run([str(copy / "scripts" / "setup-venv"), *args], cwd=copy, env={**os.environ, **NO_NETWORK},
                   check=True, capture_output=True, timeout=60)
    return calls.read_text().splitlines() if calls.exists() else []


def test_setup_venv_installs_once_and_again_only_when_pyproject_changes(copy: Path) -> None:
    assert setup_venv(copy, "test") == ["-m pip install --quiet --disable-pip-version-check -e .[test]"]
    assert setup_venv(copy, "test") == []  # the second run: no pip, so no network and no pip upgrade
    assert setup_venv(copy) == []  # the demo's plain install is part of what test installed
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# a new dependency would be here\n")
    assert setup_venv(copy) == ["-m pip install --quiet --disable-pip-version-check -e ."]
    assert setup_venv(copy, "test") == ["-m pip install --quiet --disable-pip-version-check -e .[test]"]


def test_the_scripts_never_upgrade_pip() -> None:
    for name in ("test", "demo", "setup-venv"):
        assert "--upgrade pip" not in (ROOT / "scripts" / name).read_text()


def test_fetch_scripts_need_no_network_once_everything_is_there(tmp_path: Path) -> None:
    testdata, tools = ROOT / ".cache" / "testdata" / "node_modules", ROOT / ".cache" / "node-tools" / "node_modules"
    needed = [testdata / "@readme" / "oas-examples", testdata / "@octokit" / "openapi", testdata / "mcp-remote",
              tools / "@modelcontextprotocol" / "conformance", tools / "@modelcontextprotocol" / "inspector"]
    if shutil.which("npm") is None or not all(path.is_dir() for path in needed):
        skip_or_fail("the npm test data is not fetched (run scripts/test once)")
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "npm").write_text(f'#!/usr/bin/env bash\necho "$*" >> "{tmp_path}/npm-calls"\nexit 1\n')
    (stub / "npm").chmod(0o755)
    env = {**os.environ, **NO_NETWORK, "PATH": f"{stub}{os.pathsep}{os.environ['PATH']}"}
    for script in ("fetch-test-data", "fetch-node-tools"):
        result = subprocess.run([str(ROOT / "scripts" / script)], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / "npm-calls").exists()
    # Only the one file the tests read is kept of GitHub's spec package (ten variants were 385 MB).
    assert sorted(path.name for path in (testdata / "@octokit" / "openapi" / "generated").iterdir()) == [
        "api.github.com.json"]
