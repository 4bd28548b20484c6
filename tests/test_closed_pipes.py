"""Every command whose reader goes away (`castproxy tools --spec X | head`) ends quietly: no traceback, no
"Exception ignored ... BrokenPipeError", exit 1. The output goes to a pipe whose reading end is already
closed, so the very first write fails, whatever its size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.net import free_port

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "Many", "version": "1"},
    "paths": {f"/items/{n}": {"get": {"operationId": f"getItem{n}", "summary": "One item " * 8,
                                      "responses": {"200": {"description": "ok"}}}} for n in range(600)},
}
CONFIG = """version: 1
store:
  path: state.db
workspaces:
  items:
    openapi: spec.json
    base_url: http://127.0.0.1:9
    auth: {type: bearer, token: "${env:CLOSED_PIPE_TOKEN}"}
    tools: [getItem1, getItem2]
"""


def run_into_closed_pipe(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "CLOSED_PIPE_TOKEN": "t0ken"}
    try:
        return subprocess.run([sys.executable, "-m", "castproxy", *args], cwd=cwd, env=env, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "spec.json").write_text(json.dumps(SPEC))
    (tmp_path / "cast.yaml").write_text(CONFIG)
    return tmp_path


@pytest.mark.parametrize(
    "args",
    [
        ["tools", "--spec", "spec.json"],
        ["tools", "--spec", "spec.json", "--json"],
        ["tools", "items", "-c", "cast.yaml"],
        ["schema"],
        ["validate", "-c", "cast.yaml", "--offline"],
        ["connect", "items", "-c", "cast.yaml"],
        ["testserver", "--port", "{port}"],
        ["demo", "--port", "{port}", "--upstream-port", "{port2}"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_a_closed_stdout_ends_the_command_quietly(folder: Path, args: list[str]) -> None:
    ports = {"port": str(free_port()), "port2": str(free_port())}
    result = run_into_closed_pipe([arg.format(**ports) for arg in args], folder)
    assert result.returncode == 1
    assert result.stderr == ""

