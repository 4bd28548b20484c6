"""`castproxy lock`: cast.lock is deterministic, readable, holds no secret, and `--check` says when it is stale."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gitops_support import TOOLS, Project, config_text, run, spec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support.servers import run as serve_app

from castproxy.gitops.lockfile import Inventory, LockError, ToolRecord, WorkspaceRecord, parse_lock, render_lock

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _reversed(value: Any) -> Any:
    """The same JSON value with every object's keys in the opposite order."""
    if isinstance(value, dict):
        return {key: _reversed(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed(item) for item in value]
    return value


def test_lock_is_byte_identical_across_runs(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "lock", "-c", str(project.config))
    assert code == 0
    assert out.startswith(f"wrote {project.lock} (1 workspace, 3 tools)")
    first = project.lock.read_bytes()
    code, out, _ = run(capsys, "lock", "-c", str(project.config))
    assert code == 0 and "up to date" in out
    assert project.lock.read_bytes() == first
    project.lock.unlink()
    assert run(capsys, "lock", "-c", str(project.config))[0] == 0
    assert project.lock.read_bytes() == first


def test_lock_reads_as_one_small_block_per_tool(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "lock", "-c", str(project.config))
    text = project.lock.read_text()
    assert text.splitlines()[2:9] == [
        "version: 1",
        "workspaces:",
        "  pets:",
        "    spec:",
        "      source: spec.json",
        "      digest: sha256:" + hashlib.sha256((project.folder / "spec.json").read_bytes()).hexdigest(),
        "    server: https://pets.example.com/v1",
    ]
    blocks = text.split("      - name: ")[1:]
    assert [block.split("\n", 1)[0] for block in blocks] == sorted(TOOLS)
    assert blocks[0].splitlines()[1:] == [
        "        operation: createPet",
        "        method: POST",
        "        path: /pets",
        f"        digest: {DIGEST.search(blocks[0]).group(0)}",
    ]


def test_tool_digest_is_sha256_of_the_canonical_published_definition(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recomputed here from `tools --json` (what clients see): sorted keys, no whitespace, UTF-8."""
    run(capsys, "lock", "-c", str(project.config))
    locked = {tool.name: tool.digest for tool in parse_lock(project.lock.read_text(), project.lock).workspaces[0].tools}
    monkeypatch.setenv("PETS_TOKEN", "t")
    code, out, _ = run(capsys, "tools", "pets", "-c", str(project.config), "--json")
    assert code == 0
    for tool in json.loads(out)["tools"]:
        definition = {"name": tool["name"], "description": tool["description"], "inputSchema": tool["input_schema"],
                      "annotations": tool["annotations"]}
        if tool["title"] is not None:
            definition["title"] = tool["title"]
        canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        assert locked[tool["name"]] == "sha256:" + hashlib.sha256(canonical).hexdigest()


def test_tool_digests_do_not_depend_on_key_order_tool_order_or_working_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    one = Project(tmp_path / "one").write()
    two = Project(tmp_path / "two").write(_reversed(spec()), tools=list(reversed(TOOLS)))
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "lock", "-c", "one/cast.yaml")[0] == 0
    monkeypatch.chdir(two.folder)
    assert run(capsys, "lock")[0] == 0
    first, second = one.lock.read_text(), two.lock.read_text()
    # Only the spec's own digest differs (its bytes do); every tool's digest is the same.
    assert first != second
    spec_line = re.compile(r"^      digest: .*$", re.MULTILINE)
    assert spec_line.sub("", first) == spec_line.sub("", second)


def test_lock_needs_no_secrets_and_holds_none(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A spec URL with a password and a key in its query is recorded masked, like `tools` shows it."""
    document = json.dumps(spec()).encode()

    async def openapi(request: Request) -> Response:
        if request.query_params.get("key") != "spec-key-5150" or "authorization" not in request.headers:
            return JSONResponse({"error": "no"}, status_code=401)
        return Response(document, media_type="application/json")

    server = serve_app(Starlette(routes=[Route("/openapi.json", openapi)]))
    try:
        monkeypatch.setenv("SPEC_KEY", "spec-key-5150")
        monkeypatch.setenv("SPEC_PASSWORD", "hunter2-secret")
        host = server.url.removeprefix("http://")
        url = f"http://reader:${{env:SPEC_PASSWORD}}@{host}/openapi.json?key=${{env:SPEC_KEY}}"
        project = Project(tmp_path / "remote")
        project.folder.mkdir()
        project.config.write_text(config_text(openapi=f'"{url}"'))
        code, out, err = run(capsys, "lock", "-c", str(project.config))
    finally:
        server.stop()
    assert code == 0, err
    text = project.lock.read_text()
    assert f'source: "http://reader:***@{host}/openapi.json?key=***"' in text
    for secret in ("spec-key-5150", "hunter2-secret"):
        assert secret not in text + out + err


def test_check_in_sync_then_stale_then_missing(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "lock", "-c", str(project.config))[0] == 0
    code, out, _ = run(capsys, "lock", "--check", "-c", str(project.config))
    assert (code, out.split(":", 1)[1].strip()) == (0, "in sync with cast.yaml (1 workspace, 3 tools)")
    before = project.lock.read_bytes()
    project.write(spec(lambda d: d["paths"]["/pets"]["get"].update(description="Pets, oldest first.")))
    code, out, err = run(capsys, "lock", "--check", "-c", str(project.config))
    assert code == 1
    # Not a git work tree: the lock's digests are all there is, so the change is seen but not classed.
    assert "unknown       listPets: definition changed" in out
    assert "is out of date" in err
    assert project.lock.read_bytes() == before  # --check never writes
    project.lock.unlink()
    code, _, err = run(capsys, "lock", "--check", "-c", str(project.config))
    assert code == 1 and "no lock file" in err


def test_check_flags_a_spec_change_that_leaves_the_tools_alone(project: Project,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "lock", "-c", str(project.config))
    project.write(spec(lambda d: d["paths"]["/pets/{id}"]["delete"].update(summary="Remove a pet")))  # not exposed
    code, out, _ = run(capsys, "lock", "--check", "-c", str(project.config))
    assert code == 1
    assert "no changes to the exposed tools" in out
    assert "the spec document changed; the tools it exposes did not" in out
    assert run(capsys, "diff", "-c", str(project.config))[0] == 0  # diff: no change to the tools


def test_a_hand_broken_lock_is_reported_with_positions(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "lock", "-c", str(project.config))
    lines = project.lock.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("        digest:"))
    lines[index] = "        digest: sha256:nothex"
    project.lock.write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "lock", "--check", "-c", str(project.config))
    assert code == 1
    assert f"{project.lock}:{index + 1}:17: `digest` must be sha256: followed by 64 hex digits" in err
    project.lock.write_text("version: 1\nworkspaces:\n<<<<<<< HEAD\n")
    code, _, err = run(capsys, "diff", "-c", str(project.config))
    assert code == 1 and re.search(rf"{re.escape(str(project.lock))}:\d+:\d+: ", err)


def test_odd_names_are_quoted_and_read_back() -> None:
    names = ["true", "123", "get items", "a:b", "#x", "ünïcode", "-dash", "end:", "quote\"d"]
    tools = tuple(ToolRecord(f"t{i}", name, "GET", f"/p/{{{name}}}", "sha256:" + "0" * 64)
                  for i, name in enumerate(names))
    inventory = Inventory((WorkspaceRecord("w", "https://x.example/spec?k=***", "sha256:" + "1" * 64, None,
                                           tools),))
    text = render_lock(inventory, "cast.yaml")
    assert parse_lock(text, Path("cast.lock")) == inventory


def test_an_unknown_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LockError) as caught:
        parse_lock("version: 2\nworkspaces: {}\n", tmp_path / "cast.lock")
    assert str(caught.value.problems[0]).startswith(f"{tmp_path / 'cast.lock'}:1:10: unsupported lock version 2")


def test_lock_on_a_broken_config_prints_positions_and_writes_nothing(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write(tools=["listPets", "listPetz"])
    code, out, err = run(capsys, "lock", "-c", str(project.config))
    assert code == 1 and out == ""
    assert f"{project.config}:8:23: operationId 'listPetz' is not in the spec; did you mean 'listPets'?" in err
    assert not project.lock.exists()


def test_real_process_exit_codes(project: Project) -> None:
    def castproxy(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "castproxy", *args], capture_output=True, text=True,
                              timeout=60, env={k: v for k, v in os.environ.items() if k != "PETS_TOKEN"})

    assert castproxy("lock", "-c", str(project.config)).returncode == 0
    assert castproxy("lock", "--check", "-c", str(project.config)).returncode == 0
    project.write(tools=["listPets", "getPet"])
    result = castproxy("lock", "--check", "-c", str(project.config))
    assert result.returncode == 1 and "createPet: tool removed (POST /pets)" in result.stdout
    assert castproxy("diff", "-c", str(project.config)).returncode == 3
    assert castproxy("diff", "one.yaml").returncode == 2


def test_the_lock_is_readable_by_others_and_a_failed_write_is_an_error(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "lock", "-c", str(project.config))
    assert project.lock.stat().st_mode & 0o777 == 0o644
    project.lock.unlink()
    project.lock.mkdir()  # something in the way that no rename can replace
    code, out, err = run(capsys, "lock", "-c", str(project.config))
    assert (code, out) == (1, "")
    assert err.startswith(f"castproxy lock: cannot write {project.lock}: ")
    assert [p.name for p in project.folder.iterdir() if p.name.startswith(".cast.lock")] == []
