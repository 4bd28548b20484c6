"""The README's first quick-start command, from a fresh clone in a temporary folder.

`git clone` of this repository, then `scripts/demo` (which installs castproxy into the clone's .venv
and runs `castproxy demo`), then the same user steps as test_demo.py: sign in through both approval
pages, list the five tutorial tools, call each one, Ctrl-C.

To stay fast and offline-friendly the clone's .venv is pre-created with a path file pointing at this
environment's installed dependencies, so `scripts/demo` installs castproxy itself but no dependency
downloads are needed (pip still fetches the build backend, so PyPI must be reachable; without it the
test skips, or fails under CI=true). The clone has the committed tree (HEAD), not uncommitted edits.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from demo_support import mcp_url, run_tutorial, start_demo
from support.net import free_port, port_is_free
from support.skips import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _prepared_clone(tmp_path: Path) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        skip_or_fail("needs git and a git checkout")
    clone = tmp_path / "castproxy"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    base_python = Path(sys.base_prefix) / "bin" / "python3"
    if not base_python.exists():
        skip_or_fail(f"no base interpreter at {base_python}")
    subprocess.run([str(base_python), "-m", "venv", "--without-pip", str(clone / ".venv")], check=True, timeout=120)
    site = Path(subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "castproxy-test-shared-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return clone


async def test_scripts_demo_from_a_fresh_clone(tmp_path: Path) -> None:
    clone = _prepared_clone(tmp_path)
    port, upstream_port = free_port(), free_port()
    command = ["scripts/demo", "--port", str(port), "--upstream-port", str(upstream_port)]
    demo = start_demo(command, clone, port, upstream_port, tmp_path / "demo.log")
    try:
        try:
            output = demo.read_until("Press Ctrl-C to stop", timeout=240)
        except AssertionError:
            log = (tmp_path / "demo.log").read_text()
            offline_signs = ("connection", "network", "name resolution", "could not find a version")
            if demo.process.poll() is not None and any(sign in log.lower() for sign in offline_signs):
                skip_or_fail(f"scripts/demo could not install (PyPI unreachable?):\n{log[-2000:]}")
            raise AssertionError(f"scripts/demo did not come up:\n{log[-4000:]}") from None
        installed = subprocess.run([str(clone / ".venv" / "bin" / "python"), "-c",
                                    "import castproxy; print(castproxy.__file__)"],
                                   cwd=clone / ".venv", check=True, capture_output=True, text=True).stdout
        assert installed.startswith(str(clone))  # the clone's own code runs, not this checkout's
        await run_tutorial(mcp_url(output))
        assert demo.stop(signal.SIGINT) == 0
        assert port_is_free(port) and port_is_free(upstream_port)
    finally:
        demo.kill()
